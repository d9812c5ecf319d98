"""The tables of docs/STATS.md, from the code: every metric and every aggregate field.

``python -m backend.statsdocs`` prints them; tests/test_stats_docs.py checks
that the guide has them as the code says.  Like backend/tap.py it sees both
sides: the nodes' pollers (what they read) and the controller's exposition
and aggregators (what it makes of it).
"""

from __future__ import annotations

from backend.controller.aggregators.shipped import SHIPPED as AGGREGATORS
from backend.controller.metrics import OWN_METRICS
from backend.node.pollers.base import STATUS_METRICS
from backend.node.pollers.shipped import SHIPPED as POLLERS
from seer.protocol.stats import is_counter, metric_name


def metric_rows() -> list[tuple[str, str, str, str, str]]:
    """(metric, type, labels, unit, meaning) of every metric /metrics has."""
    rows = []
    for poller in POLLERS:
        for value, (unit, labels, meaning) in poller.METRICS.items():
            names = ["node", *labels] + (["link"] if "interface" in labels else [])
            rows.append((metric_name(poller.NAME, value),
                         "counter" if is_counter(value) else "gauge", ", ".join(names), unit,
                         meaning))
    for value, (unit, meaning) in STATUS_METRICS.items():
        rows.append((metric_name("poller", value), "counter", "node, poller", unit, meaning))
    for name, (kind, labels, unit, meaning) in OWN_METRICS.items():
        rows.append((name, kind, ", ".join(labels) or "-", unit, meaning))
    return rows


def metric_table() -> str:
    lines = ["| metric | type | labels | unit | meaning |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{m}` | {t} | {labels} | {unit} | {meaning} |"
              for m, t, labels, unit, meaning in metric_rows()]
    return "\n".join(lines)


def aggregate_table() -> str:
    lines = ["| kind | field | unit | meaning |", "| --- | --- | --- | --- |"]
    for aggregator in AGGREGATORS:
        for kind, fields in aggregator.FIELDS.items():
            lines += [f"| {kind} | `{field}` | {unit} | {meaning} |"
                      for field, (unit, meaning) in fields.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(metric_table())
    print()
    print(aggregate_table())
