"""docs/STATS.md matches the code: its metric and aggregate tables are the
ones the code makes, and its poller and aggregator examples load and run."""

from __future__ import annotations

import re
from pathlib import Path

from twisted.internet import task

from backend import statsdocs
from backend.controller.aggregators import View, load_aggregators
from backend.controller.aggregators.links import LinkMap
from backend.controller.aggregators.store import ReadingStore
from backend.node.pollers import load_pollers

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "STATS.md"


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_guide_has_every_metric_and_aggregate_field_as_the_code_makes_them():
    guide = GUIDE.read_text()
    assert statsdocs.metric_table() in guide
    assert statsdocs.aggregate_table() in guide
    documented = set(re.findall(r"^\| `(seer_[a-z0-9_]+)` \|", guide, re.M))
    assert documented == {row[0] for row in statsdocs.metric_rows()}


def test_the_guides_poller_example_loads_as_a_plug_in_and_reads(tmp_path):
    poller_code, aggregator_code = (b for b in _blocks(GUIDE.read_text())
                                    if "Poller" in b or "Aggregator" in b)
    zone = tmp_path / "temp"
    zone.write_text("41500\n")
    (tmp_path / "temps.py").write_text(
        poller_code.replace("/sys/class/thermal/thermal_zone0/temp", str(zone)))
    plugins = load_pollers([str(tmp_path)])
    assert plugins.errors == []
    cls = plugins.classes["temperature"]
    got = []
    poller = cls(None, task.Clock())
    poller.on_reading = lambda p, t, r: got.append(r)
    poller.send_req()
    assert got == [[[{"sensor": "zone0"}, {"celsius": 41.5}]]]


def test_the_guides_aggregator_example_loads_and_aggregates(tmp_path):
    (aggregator_code,) = (b for b in _blocks(GUIDE.read_text()) if "Aggregator" in b)
    (tmp_path / "hot.py").write_text(aggregator_code)
    plugins = load_aggregators([str(tmp_path)])
    assert plugins.errors == []
    store = ReadingStore()
    store.update("n1", 100.0, {"time": 100.0, "interval": 1.0}, [
        {"poller": "host", "t": 100.0, "series": [({}, {"cpus": 2, "load1": 3.5})]}])
    view = View(store, LinkMap({}), {"n1": True}, 100.5)
    assert plugins.classes["hot"]().aggregate(view, 100.5) == {"nodes": {"n1": {"hot": True}}}
