"""A real `seer run` on a namespace testbed comes back with its report: a few
seconds of CBR through one link in a phase the script marked, after a phase
of nothing; the report (drawn by `seer run` itself) has a plot for each link
that carried traffic, the phases named on it, and a page linking them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from seer.report.record import load
from seer.testbed.netns import can_build

from e2e import running_testbed

pytest.importorskip("matplotlib")  # seer run draws its report with it

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or ""),
              pytest.mark.timeout(240)]

#: Two point-to-point links through a router: one carries the flow, one nothing.
TOPOLOGY = """
[nodes.b]
router = true
[nodes]
a = {}
c = {}
[links.wire]
nodes = ["a", "b"]
[links.quiet]
nodes = ["b", "c"]
"""

#: Phase "idle" until the record has two intervals of it, phase "sending"
#: from the flow's start until its sink has reported.
SCRIPT = """
from seer.client import Experiment

with Experiment() as exp:
    cbr = exp.agent("CBR", "flow")
    cbr.set(senders="a", sinks="b", rate="2mbit", size=1000, duration=3, idle=1)
    idle = exp.mark("idle")
    aggregate = lambda: exp.stats()["aggregate"]
    exp.wait_until(lambda: aggregate().get("time", 0) > idle.start + 1.5, timeout=30,
                   interval=0.2, what="two intervals of the idle phase")
    links = lambda: aggregate().get("links") or {}
    exp.mark("sending")
    cbr.start(target="a,b")
    exp.wait_until(lambda: (links().get("wire") or {}).get("bps", 0) > 1e6, timeout=30,
                   interval=0.2, what="the flow on wire")
    exp.wait_until(lambda: cbr.stats(target="b").get("b", {}).get("cbr_received"),
                   timeout=30, interval=0.3, what="the sink's report")
    exp.end_phase()
    cbr.stop(target="a,b")
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-bed")
    topology = folder / "wire.toml"
    topology.write_text(TOPOLOGY)
    with running_testbed(folder / "state", topology, f"report{os.getpid() % 1000}") as testbed:
        yield testbed


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.targets.update(v for k, v in attrs if k in ("href", "src"))


def svg_texts(path) -> list[str]:
    return ["".join(e.itertext()).strip()
            for e in ET.parse(path).iter("{http://www.w3.org/2000/svg}text")]


def test_a_run_comes_back_with_a_plot_per_link_that_carried_traffic_and_its_phases(
        bed, tmp_path):
    script = tmp_path / "flow.py"
    script.write_text(SCRIPT)
    results = tmp_path / "results"
    run = subprocess.run([sys.executable, "-m", "seer", "run", "--results", str(results),
                          str(script)], capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, SEER_TESTBED=bed["name"]))
    assert run.returncode == 0, run.stderr
    page = results / "report" / "index.html"
    assert f"[seer run: report in {page} (" in run.stderr, run.stderr

    record = load(results)
    assert [p.name for p in record.phases] == ["idle", "sending"]
    assert not any(p.open for p in record.phases)
    assert "wire" in record.carried_links()
    plotted = sorted(p.name for p in (results / "report").glob("link-*.svg"))
    # One plot per link that carried traffic -- quiet, too, only if something
    # crossed it (it has no flow; neighbour discovery may still pass 1 kbit/s).
    assert plotted == sorted(f"link-{n}.svg" for n in record.carried_links())
    assert (results / "report" / "link-wire.png").exists()

    texts = svg_texts(results / "report" / "link-wire.svg")
    assert "link wire: rate and drops" in texts
    assert "idle" in texts and "sending" in texts
    # The flow is drawn inside its phase: the link's rate passed 1 Mbit/s
    # there, and not in the idle phase before it.
    sending = record.phases[1]
    rate = record.get("links", "wire", "bps")
    assert max(v for t, v in zip(rate.times, rate.values, strict=True)
               if sending.start <= t <= sending.end + 1.5) > 1e6
    before = [v for t, v in zip(rate.times, rate.values, strict=True) if t < sending.start]
    assert before and max(before) < 1e6

    parser = Links()
    parser.feed(page.read_text())
    made = {p.name for p in (results / "report").iterdir() if p.suffix in (".png", ".svg")}
    assert made and made <= parser.targets
