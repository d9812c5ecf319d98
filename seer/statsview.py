"""Aggregates as text: the tables `seer stats` and `seer watch` print.

Pure functions of an aggregate (the controller's STATS reply or AGGREGATE
frame), 80 columns wide, so they are tested without a controller.  Rates
are shown in bit/s with SI prefixes; a link's queue is its backlog, its
drops per second and, for a shaped link, how full its rate is.
"""

from __future__ import annotations

import time
from typing import Any

WIDTH = 80


def bits(value: Any) -> str:
    """5e6 -> '5.00 Mbit/s'."""
    if not isinstance(value, (int, float)):
        return "-"
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} bit/s"


def count(value: Any, unit: str = "") -> str:
    if not isinstance(value, (int, float)):
        return "-"
    for prefix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{prefix}{unit}"
    text = f"{value:.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.2g}"
    return text + unit


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def link_lines(aggregate: dict[str, Any]) -> list[str]:
    links = aggregate.get("links") or {}
    lines = [f"{'LINK':<18}{'KIND':<5}{'RATE':>14}{'PACKETS/S':>10}{'DROPS/S':>9}"
             f"{'QUEUE':>9}{'FULL':>7}"]
    if not links:
        lines.append("  (no link known yet: nodes report their interfaces when they register)")
    for name, link in sorted(links.items()):
        full = link.get("utilization")
        stale = " (stale)" if link.get("stale_members") else ""
        lines.append(_fit(
            f"{name:<18}{link.get('kind', ''):<5}{bits(link.get('bps')):>14}"
            f"{count(link.get('pps')):>10}{count(link.get('drops_ps')):>9}"
            f"{count(link.get('backlog_bytes'), 'B'):>9}"
            f"{(f'{full:.0%}' if isinstance(full, (int, float)) else '-'):>7}{stale}"))
    return lines


def node_lines(aggregate: dict[str, Any]) -> list[str]:
    nodes = aggregate.get("nodes") or {}
    lines = [f"{'NODE':<14}{'STATS':<7}{'RECEIVED':>14}{'SENT':>14}{'HOST CPU':>10}"
             f"{'POLLERS':>9}"]
    for name, node in sorted(nodes.items()):
        cpu = node.get("cpu_percent")
        pollers = node.get("pollers_cpu_percent")
        lines.append(_fit(
            f"{name:<14}{node.get('state', '?'):<7}{bits(node.get('rx_bps')):>14}"
            f"{bits(node.get('tx_bps')):>14}"
            f"{(f'{cpu:.1f}%' if isinstance(cpu, (int, float)) else '-'):>10}"
            f"{(f'{pollers:.2f}%' if isinstance(pollers, (int, float)) else '-'):>9}"))
    return lines


def group_lines(aggregate: dict[str, Any], shown: int = 3) -> list[str]:
    groups = aggregate.get("groups") or {}
    lines = [f"{'AGENT GROUP':<22}{'NODES':>6}{'RUN':>4}{'CPU':>7}  COUNTERS (total, per second)"]
    for name, group in sorted(groups.items()):
        cpu = group.get("cpu_percent")
        counters = group.get("counters") or {}
        rates = group.get("rates") or {}
        busiest = sorted(counters, key=lambda k: -(rates.get(k) or 0))[:shown]
        text = " ".join(f"{k}={count(counters[k])}"
                        + (f" ({count(rates[k])}/s)" if rates.get(k) else "") for k in busiest)
        lines.append(_fit(
            f"{name:<22}{group.get('nodes', 0):>6}{group.get('running', 0):>4}"
            f"{(f'{cpu:.1f}%' if isinstance(cpu, (int, float)) else '-'):>7}  {text}"))
    return lines


def render(aggregate: dict[str, Any] | None, title: str = "SEER stats") -> list[str]:
    """The whole `seer stats` table."""
    if not aggregate:
        return [f"{title}: no aggregate yet (the controller makes one every interval)"]
    when = time.strftime("%H:%M:%S", time.localtime(aggregate.get("time") or 0))
    lines = [_fit(f"{title} at {when}, every {aggregate.get('interval', 1):g} s"), ""]
    lines += link_lines(aggregate) + [""] + node_lines(aggregate)
    if aggregate.get("groups"):
        lines += [""] + group_lines(aggregate)
    return lines
