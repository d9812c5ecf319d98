"""`seer watch`: a live view of the experiment in an 80-column terminal.

It subscribes as a sink and, every interval, asks the controller for its
status and its stats aggregate; it shows the links' rates and queues, the
nodes (up or down, last serial, lag, drops, repairs), every agent group's
counters (from the aggregate, so they are there right after a run too, and
per node as they stream in), the latest commands and reports.  ``--json``
prints the same state as one JSON object per refresh.  On a terminal the view is redrawn in place; otherwise each
refresh is printed after the last.  Rendering is a pure function of the
collected state, so it is tested without a controller.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

from seer.protocol.wire import Frame

WIDTH = 80
REPORT_LINES = 8
SHOWN_COUNTERS = ("requests", "bytes", "errors", "served_requests", "served_bytes",
                  "transfers", "lookups", "answered", "replies", "packets", "captured",
                  "launched", "exited_ok", "exited_error", "received_bps", "loss", "jitter_ms")


@dataclass
class WatchState:
    status: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    reports: deque = field(default_factory=lambda: deque(maxlen=REPORT_LINES))
    #: The controller's latest stats aggregate and command log (seer.statsview).
    aggregate: dict[str, Any] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "aggregate": self.aggregate, "commands": self.commands,
                "node_stats": self.stats,
                "counters": {f"{a} {g}": by_node for (a, g), by_node in self.counters.items()},
                "reports": list(self.reports)}

    def take(self, frame: Any) -> None:
        """Fold one sink frame into the state."""
        if frame.type == "STATUS":
            self.status = {k: v for k, v in frame.header.items() if k not in ("type", "id")}
        elif frame.type == "STREAM" and isinstance(frame.get("data"), dict):
            key = (str(frame.get("agent")), str(frame.get("group")))
            node_counters = self.counters.setdefault(key, {}).setdefault(str(frame.get("node")), {})
            node_counters.update({k: v for k, v in frame.get("data").items()
                                  if isinstance(v, (int, float))})
        elif frame.type == "REPORT":
            self.reports.append(frame.header)


def _short(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}"
    if isinstance(value, (int, float)):
        value = int(value)
        for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(value) >= 10 * size:
                return f"{value / size:.1f}{unit}"
        return str(value)
    return str(value)


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def render(state: WatchState, now: float | None = None) -> list[str]:
    """The screen: at most 80 columns per line."""
    status = state.status
    nodes = status.get("nodes") or []
    up = [n for n in nodes if n.get("up")]
    clock = time.strftime("%H:%M:%S", time.localtime(time.time() if now is None else now))
    datagrams = status.get("datagrams") or {}
    lines = [
        _fit(f"SEER watch: controller {status.get('controller', '?')}, serial "
             f"{status.get('serial', '?')}".ljust(WIDTH - 9) + clock),
        _fit(f"nodes {len(up)}/{len(nodes)} up   largest lag "
             f"{max((n.get('lag') or 0 for n in up), default=0)}   datagrams "
             f"{datagrams.get('messages', 0)} messages, {datagrams.get('pings', 0)} pings"),
        "",
        f"{'NODE':<14}{'STATE':<7}{'SERIAL':>8}{'LAG':>6}{'DROPS':>7}{'REPAIRS':>9}",
    ]
    for node in nodes:
        stats = state.stats.get(node["name"]) or {}
        drops = sum(v for k, v in stats.items() if k.startswith("dropped_") or k == "rx_dropped")
        lines.append(_fit(
            f"{node['name']:<14}{'up' if node.get('up') else 'DOWN':<7}{node.get('serial', 0):>8}"
            f"{(node.get('lag') if node.get('lag') is not None else '-'):>6}{drops:>7}"
            f"{stats.get('repairs_received', 0):>9}"))
    if state.aggregate:
        from seer.statsview import group_lines, link_lines

        lines += [""] + link_lines(state.aggregate)
        if state.aggregate.get("groups"):
            lines += [""] + group_lines(state.aggregate)
    lines += ["", f"{'AGENT':<9}{'GROUP':<12}{'NODE':<12}COUNTERS"]
    if not state.counters:
        lines.append("  (no agent has streamed counters yet)")
    for (agent, group), by_node in sorted(state.counters.items()):
        for node, counters in sorted(by_node.items()):
            shown = [f"{k}={_short(counters[k])}" for k in SHOWN_COUNTERS if k in counters]
            lines.append(_fit(f"{agent:<9}{group:<12}{node:<12}{' '.join(shown)}"))
    if state.commands:
        lines += ["", "RECENT COMMANDS"]
        for entry in state.commands[-REPORT_LINES:]:
            when = time.strftime("%H:%M:%S", time.localtime(entry.get("time") or 0))
            counts = " ".join(f"{k} {v}" for k, v in sorted((entry.get("counts") or {}).items()))
            lines.append(_fit(f"{when} {entry.get('sender', '')}: {entry.get('command', '')} "
                              f"{entry.get('agent', '')} {entry.get('group', '')} -> "
                              f"{entry.get('nodes', 0)} node(s): {counts}"))
    lines += ["", "RECENT REPORTS"]
    if not state.reports:
        lines.append("  (none yet)")
    for report in state.reports:
        when = time.strftime("%H:%M:%S", time.localtime(report.get("time") or 0))
        data = report.get("data") or {}
        detail = " ".join(f"{k}={_short(v)}" for k, v in data.items()
                          if isinstance(v, (int, float, str)))
        lines.append(_fit(f"{when} {report.get('node', '?'):<10} {report.get('agent', '')} "
                          f"{report.get('group', '')} {report.get('event', '')} {detail}"))
    return lines


def watch(experiment: Any, interval: float = 1.0, duration: float | None = None,
          once: bool = False, out: TextIO = sys.stdout, as_json: bool = False) -> None:
    """Collect and redraw until Ctrl-C (or ``duration`` seconds, or once)."""
    state = WatchState()
    experiment.subscribe()
    tty = out.isatty() and not as_json
    deadline = None if duration is None else time.monotonic() + duration
    while True:
        state.take(Frame(dict(experiment.status(), type="STATUS")))
        state.stats = {n["name"]: n.get("stats") or {} for n in experiment.nodes()}
        stats = experiment.stats(commands=REPORT_LINES)
        state.aggregate = stats.get("aggregate") or {}
        state.commands = stats.get("commands") or []
        for frame in experiment.events(timeout=0.0 if once else interval):
            state.take(frame)
        if as_json:
            out.write(json.dumps(state.to_json(), default=str) + "\n")
        else:
            screen = "\n".join(render(state))
            out.write(("\033[H\033[2J" if tty else "") + screen + "\n" + ("" if tty else "\n"))
        out.flush()
        if once or (deadline is not None and time.monotonic() >= deadline):
            return
