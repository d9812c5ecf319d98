"""The CLI as a user meets it: whole `seer` processes, timed from start to exit.

A controller and N daemons (default 40) on 127.0.0.1; then, RUNS times each
and one after the other: `seer --help`, `seer nodes` (one request to the
controller) and `seer command NOOP cli ECHO` -- the round trip to every
daemon, the command `salt '*' test.ping` is compared with.  Each run is a
fresh process started as a shell would (the `seer` script beside this
Python), so interpreter start-up and imports count as the user pays them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cluster import Cluster
from bench.common import add_json_flag, positive, summary_ms, table, write_json


def seer_command() -> list[str]:
    """The installed `seer` script when there is one, else `python -m seer`."""
    script = Path(sys.executable).parent / "seer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "seer"]


def time_runs(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``argv``; any that fails is an error."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: "
                               f"{done.stderr.strip() or done.stdout.strip()}")
    return times


def measure(nodes: int, runs: int) -> dict:
    seer = seer_command()
    with tempfile.TemporaryDirectory(prefix="seer-bench-cli-") as workdir:
        with Cluster(workdir, nodes) as cluster:
            env = cluster.env()
            with cluster.experiment(timeout=60) as exp:
                exp.agent("NOOP", "cli").set({"note": "bench cli"})
            timed = {
                "seer --help": seer + ["--help"],
                "seer nodes": seer + ["nodes"],
                f"seer command (round trip to {nodes} daemons)":
                    seer + ["command", "NOOP", "cli", "ECHO"],
            }
            for argv in timed.values():  # once each: the page cache warm, as a shell's is
                time_runs(argv, env, 1)
            return {name: summary_ms(time_runs(argv, env, runs)) for name, argv in timed.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench cli", description=__doc__)
    parser.add_argument("--nodes", type=positive, default=40, help="daemons (default 40)")
    parser.add_argument("--runs", type=positive, default=20,
                        help="runs of each command (default 20)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    results = measure(args.nodes, args.runs)
    print(table(f"the CLI, whole processes, ms ({args.runs} runs each, {args.nodes} daemons)",
                ["command", "p50", "p95", "max", "mean"],
                [[name, r["p50"], r["p95"], r["max"], r["mean"]] for name, r in results.items()]))
    path = write_json("cli", {"nodes": args.nodes, "runs": args.runs, "results": results},
                      args.json)
    print(f"\nJSON: {path}")
    return {"results": results}
