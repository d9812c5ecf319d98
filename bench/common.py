"""What every benchmark shares: the machine, percentiles, a table, JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

RESULTS = Path(__file__).resolve().parent / "results"
AGENTS = Path(__file__).resolve().parent / "agents"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release()}


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1 (node counts, rounds)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def positive_number(text: str) -> float:
    """argparse type: a finite number above 0 (seconds)."""
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


def rate_or_burst(text: str) -> float:
    """argparse type: commands per second, or 0 for one burst."""
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (per second; 0 = one burst)")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # refused by every check above


def drop_share(text: str) -> float:
    """argparse type: a share of datagrams to drop, 0 <= share < 1 (0.2 = 20%)."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share from 0 to below 1, e.g. 0.2")
    return value


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Every benchmark's --json PATH (its result goes there instead)."""
    parser.add_argument("--json", metavar="PATH",
                        help="where to write the JSON (default bench/results/NAME-TIME.json)")


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50": round(percentile(ms, 50), 2), "p95": round(percentile(ms, 95), 2),
            "p99": round(percentile(ms, 99), 2), "max": round(max(ms), 2) if ms else float("nan"),
            "mean": round(statistics.fmean(ms), 2) if ms else float("nan")}


def table(title: str, columns: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in columns]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells[1:]]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write_json(name: str, data: dict[str, Any], path: str | None = None) -> Path:
    target = Path(path) if path else RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(dict(data, machine=machine(), benchmark=name,
                                      when=time.strftime("%Y-%m-%dT%H:%M:%S%z")), indent=2))
    return target


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> dict[str, float]:
    """The machine's CPU time so far, in seconds, from /proc/stat: ``busy``
    (user, nice, system, irq, softirq), ``steal`` (taken by the hypervisor
    for other guests) and ``total`` (every state, idle included)."""
    # Here, not at the top: the pollers' package brings Twisted, which most
    # users of this module do not need.
    from backend.node.pollers.procfs import cpu_ticks

    fields = cpu_ticks(Path("/proc/stat").read_text().split("\n", 1)[0])
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return {"busy": (user + nice + system + irq + softirq) / tick, "steal": steal / tick,
            "total": sum(fields) / tick}


def process_memory_mb(pid: int) -> dict[str, float]:
    """A process's memory in MB: rss (every resident page, shared library
    code included), pss (shared pages divided among the processes mapping
    them) and private (pages only this process holds: what it really costs)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "private": fields["Private_Clean"] + fields["Private_Dirty"]}
