"""Throughput: commands per second sustained with every outcome collected.

A controller and N daemons on 127.0.0.1; the client keeps WINDOW commands
(NOOP ECHO to every node) in flight for SECONDS and counts those whose
outcomes all came back applied.  Also: datagrams sent per command (messages
stamped in the same reactor turn share a datagram, so under load it is
below one) and the controller's CPU per command.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import deque

from bench.cluster import Cluster
from bench.common import add_json_flag, positive, positive_number, process_cpu, table, write_json


def measure(n: int, seconds: float, window: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="seer-throughput-") as workdir:
        with Cluster(workdir, n) as cluster:
            with cluster.experiment(timeout=60) as exp:
                group = exp.agent("NOOP", "throughput")
                group.set({"note": "throughput"})  # makes the group (a bare command may not)
                group.command("ECHO")
                before = exp.status()
                cpu_before = process_cpu(cluster.controller.pid)
                in_flight: deque = deque()
                done = failed = 0
                started = time.monotonic()
                while time.monotonic() - started < seconds:
                    while len(in_flight) < window:
                        in_flight.append(group.submit("ECHO"))
                    result = in_flight.popleft().result(check=False)
                    done += result.ok
                    failed += not result.ok
                while in_flight:
                    result = in_flight.popleft().result(check=False)
                    done += result.ok
                    failed += not result.ok
                elapsed = time.monotonic() - started
                cpu = process_cpu(cluster.controller.pid) - cpu_before
                after = exp.status()
    datagrams = after["datagrams"]["messages"] - before["datagrams"]["messages"]
    commands = done + failed
    return {"nodes": n, "seconds": round(elapsed, 2), "commands": commands, "all_applied": done,
            "failed_or_unconfirmed": failed, "commands_per_s": round(done / elapsed, 1),
            "datagrams_per_command": round(datagrams / commands, 3),
            "controller_cpu_ms_per_command": round(cpu / commands * 1000, 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench throughput", description=__doc__)
    parser.add_argument("--nodes", type=positive, nargs="+", default=[10, 100],
                        help="cluster sizes, one run each (default 10 100)")
    parser.add_argument("--seconds", type=positive_number, default=10.0,
                        help="how long each run sends (default 10)")
    parser.add_argument("--window", type=positive, default=300, help="commands in flight (300)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    results = [measure(n, args.seconds, args.window) for n in args.nodes]
    print(table("throughput: NOOP ECHO to every node, every outcome collected",
                ["nodes", "commands/s", "commands", "not applied", "datagrams/cmd",
                 "controller CPU ms/cmd"],
                [[r["nodes"], r["commands_per_s"], r["commands"], r["failed_or_unconfirmed"],
                  r["datagrams_per_command"], r["controller_cpu_ms_per_command"]]
                 for r in results]))
    path = write_json("throughput", {"results": results, "window": args.window}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results}
