"""Footprint: an idle daemon's memory and CPU, the keep-alive traffic per
node, and the controller's CPU per command.

N daemons on 127.0.0.1 sit idle for SECONDS after registering; each one's
memory (RSS, and PSS and private pages, which leave out the shared library
code that RSS counts in full) and CPU share are read from /proc.  Keep-alive
traffic per node is what every node receives from the multicast PINGs plus its own TLS frames in
that time.  The controller's CPU per command comes from 2,000 commands to
the same daemons.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench.cluster import Cluster
from bench.common import (
    add_json_flag,
    positive,
    positive_number,
    process_cpu,
    process_memory_mb,
    table,
    write_json,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench footprint", description=__doc__)
    parser.add_argument("--nodes", type=positive, default=10, help="daemons (default 10)")
    parser.add_argument("--seconds", type=positive_number, default=30.0, help="idle time measured")
    parser.add_argument("--commands", type=positive, default=2000,
                        help="commands for the controller's CPU per command (default 2000)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seer-footprint-") as workdir:
        with Cluster(workdir, args.nodes) as cluster:
            with cluster.experiment(timeout=60) as exp:
                exp.agent("NOOP", "footprint").set({"note": "footprint"})  # makes the group
                exp.agent("NOOP", "footprint").command("ECHO")
                time.sleep(3)  # settle after start-up
                pids = {n: p.pid for n, p in cluster.daemons.items()}
                before = {n: process_cpu(p) for n, p in pids.items()}
                controller_before = process_cpu(cluster.controller.pid)
                status_before = exp.status()
                started = time.monotonic()
                time.sleep(args.seconds)
                idle = time.monotonic() - started
                status_after = exp.status()
                cpu = {n: (process_cpu(p) - before[n]) / idle for n, p in pids.items()}
                memory = {n: process_memory_mb(p) for n, p in pids.items()}
                controller_idle = (process_cpu(cluster.controller.pid) - controller_before) / idle
                # Controller CPU per command, with every outcome collected.
                group = exp.agent("NOOP", "footprint")
                cpu_before = process_cpu(cluster.controller.pid)
                pending = [group.submit("ECHO") for _ in range(args.commands)]
                for p in pending:
                    p.result()
                per_command = (process_cpu(cluster.controller.pid) - cpu_before) / args.commands
    multicast = (status_after["datagrams"]["bytes"] - status_before["datagrams"]["bytes"]) / idle
    tls_in = (status_after["node_tls_bytes"]["in"] - status_before["node_tls_bytes"]["in"]) / idle
    tls_out = (status_after["node_tls_bytes"]["out"] - status_before["node_tls_bytes"]["out"]) / idle
    result = {
        "nodes": args.nodes, "idle_seconds": round(idle, 1),
        **{f"daemon_{kind}_mb": {"max": round(max(m[kind] for m in memory.values()), 1),
                                 "mean": round(sum(m[kind] for m in memory.values())
                                               / len(memory), 1)}
           for kind in ("rss", "pss", "private")},
        "daemon_cpu_percent": {"max": round(max(cpu.values()) * 100, 3),
                               "mean": round(sum(cpu.values()) / len(cpu) * 100, 3)},
        "controller_idle_cpu_percent": round(controller_idle * 100, 3),
        "keepalive_bytes_per_s_per_node": round(multicast + (tls_in + tls_out) / args.nodes, 1),
        "keepalive_multicast_bytes_per_s": round(multicast, 1),
        "keepalive_tls_bytes_per_s_per_node": round((tls_in + tls_out) / args.nodes, 1),
        "controller_cpu_ms_per_command": round(per_command * 1000, 3),
    }
    print(table(f"footprint: {args.nodes} daemons idle for {idle:.0f} s",
                ["daemon RSS MB (max)", "PSS MB", "private MB", "daemon CPU % (max)",
                 "keep-alive B/s/node",
                 "controller idle CPU %", "controller CPU ms/cmd"],
                [[result["daemon_rss_mb"]["max"], result["daemon_pss_mb"]["max"],
                  result["daemon_private_mb"]["max"], result["daemon_cpu_percent"]["max"],
                  result["keepalive_bytes_per_s_per_node"],
                  result["controller_idle_cpu_percent"], result["controller_cpu_ms_per_command"]]]))
    path = write_json("footprint", result, args.json)
    print(f"\nJSON: {path}")
    return result
