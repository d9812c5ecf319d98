"""Every performance target beside its latest measured figure.

Reads, for each figure, the newest JSON in bench/results/ that has it, and
runs nothing: `make bench` runs every benchmark and then prints this;
`python -m bench targets` prints it again.  A figure no benchmark has measured yet says
which one to run.  The targets are the speed issue's (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.common import RESULTS, table


@dataclass(frozen=True)
class Target:
    figure: str
    benchmark: str
    #: The figure from the benchmark's JSON (None: that run did not measure it).
    read: Callable[[dict], float | None]
    limit: float
    unit: str
    at_least: bool = False  # a floor (commands/s), not a ceiling

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit


def fanout_row(data: dict, nodes: int, simulated: bool = False) -> dict | None:
    """The row of N nodes with the daemons' own isolate setting (a run with
    --isolate all times another thing: the hop to a worker)."""
    for row in data.get("results", []):
        if row["nodes"] == nodes and row["simulated"] == simulated \
                and row.get("isolate", "auto") == "auto":
            return row
    return None


def _fanout(nodes: int, pick: Callable[[dict], float], simulated: bool = False):
    def read(data: dict) -> float | None:
        row = fanout_row(data, nodes, simulated)
        return None if row is None else pick(row)
    return read


def _cli(name: str) -> Callable[[dict], float | None]:
    def read(data: dict) -> float | None:
        for command, figures in data.get("results", {}).items():
            if command.startswith(name):
                return figures["p50"]
        return None
    return read


def _controller_limit(nodes: int) -> float:
    """The controller's target: 0.6 ms + 35 us per node."""
    return round(0.6 + 0.035 * nodes, 3)


def _throughput(nodes: int) -> Callable[[dict], float | None]:
    def read(data: dict) -> float | None:
        rows = [r for r in data.get("results", []) if r["nodes"] == nodes]
        return rows[0]["commands_per_s"] if rows else None
    return read


TARGETS = [
    Target("`seer --help`, p50", "cli", _cli("seer --help"), 60, "ms"),
    Target("`seer nodes`, p50", "cli", _cli("seer nodes"), 120, "ms"),
    Target("CLI round trip to 40 daemons, p50", "cli", _cli("seer command"), 160, "ms"),
    Target("daemon CPU per command, N=10", "fanout",
           _fanout(10, lambda r: r["cpu_ms_per_command"]["per_node"]), 0.3, "ms"),
    Target("daemon CPU per command, N=100", "fanout",
           _fanout(100, lambda r: r["cpu_ms_per_command"]["per_node"]), 0.3, "ms"),
    Target("controller CPU per command, N=10", "fanout",
           _fanout(10, lambda r: r["cpu_ms_per_command"]["controller"]), _controller_limit(10),
           "ms"),
    Target("controller CPU per command, N=100", "fanout",
           _fanout(100, lambda r: r["cpu_ms_per_command"]["controller"]),
           _controller_limit(100), "ms"),
    Target("fan-out N=100, p50", "fanout", _fanout(100, lambda r: r["latency_ms"]["p50"]),
           20, "ms"),
    Target("fan-out N=100, p99", "fanout", _fanout(100, lambda r: r["latency_ms"]["p99"]),
           60, "ms"),
    Target("fan-out N=1,000 simulated, p50", "fanout",
           _fanout(1000, lambda r: r["latency_ms"]["p50"], simulated=True), 150, "ms"),
    Target("throughput to 10 daemons", "throughput", _throughput(10), 3000, "commands/s",
           at_least=True),
    Target("idle daemon RSS (stats pollers on)", "footprint",
           lambda data: data.get("daemon_rss_mb", {}).get("max"), 50, "MB"),
]


def newest_first(benchmark: str, results: Path = RESULTS) -> list[tuple[dict, Path]]:
    """Every JSON of ``benchmark``, newest first (names end in -YYYYmmdd-HHMMSS)."""
    paths = sorted(results.glob(f"{benchmark}-*.json"), reverse=True)
    return [(json.loads(path.read_text()), path) for path in paths]


def rows(results: Path = RESULTS) -> list[list[Any]]:
    runs = {t.benchmark: newest_first(t.benchmark, results) for t in TARGETS}
    out = []
    for target in TARGETS:
        # The newest run that measured this figure (a fanout of N=10 only
        # leaves N=100's figures to an earlier run).
        found = next(((value, path) for data, path in runs[target.benchmark]
                      if (value := target.read(data)) is not None), None)
        if found is None:
            out.append([target.figure, "-", "", f"run python -m bench {target.benchmark}", ""])
            continue
        value, path = found
        sign = ">=" if target.at_least else "<="
        out.append([target.figure, f"{value:g} {target.unit}", f"{sign} {target.limit:g}",
                    "met" if target.met(value) else "MISSED", path.name])
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench targets", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="the folder of benchmark JSON (default bench/results/)")
    args = parser.parse_args(argv)
    found = rows(args.results)
    print(table("performance targets (newest result of each benchmark)",
                ["figure", "measured", "target", "", "from"], found))
    return {"rows": found}
