"""Client launches per second: how fast a traffic generator starts clients.

A LAUNCHER group (each client is `true`, in its own process group, logged
and reaped like any client) runs with think time 0 on one or more client
nodes until each has launched COUNT clients; the traffic controllers report
their own launch rate, and the wall time from START to the last
`clients_done` gives the overall rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench.common import AGENTS, add_json_flag, positive, table, write_json
from seer.localrun import LocalExperiment


def run(clients: int, count: int, max_clients: int) -> dict:
    nodes = ["server"] + [f"client{i}" for i in range(1, clients + 1)]
    with tempfile.TemporaryDirectory(prefix="seer-bench-") as workdir:
        with LocalExperiment(workdir, nodes, common_daemon_args=["--agent-dirs", str(AGENTS)]) as lab:
            with lab.experiment() as exp:
                exp.subscribe()
                group = exp.agent("LAUNCHER", "bench")
                group.set(servers="server", clients=" ".join(nodes[1:]), think="constant(0)",
                          count=count, max_clients=max_clients)
                started = time.monotonic()
                group.start()
                done = exp.wait_for_event("clients_done", nodes=nodes[1:], group="bench",
                                          timeout=120)
                wall = time.monotonic() - started
                group.stop()
    per_node = {n: f.get("data") for n, f in done.items()}
    launched = sum(d["launched"] for d in per_node.values())
    return {"client_nodes": clients, "count_per_node": count, "max_clients": max_clients,
            "launched": launched, "exited_ok": sum(d["exited_ok"] for d in per_node.values()),
            "wall_seconds": round(wall, 3), "overall_rate": round(launched / wall, 1),
            "per_node_rate": {n: d["launch_rate"] for n, d in per_node.items()}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench launch-rate", description=__doc__)
    parser.add_argument("--count", type=positive, default=500, help="clients per node (default 500)")
    parser.add_argument("--max-clients", type=positive, default=50, help="concurrent per node (50)")
    parser.add_argument("--client-nodes", type=positive, nargs="+", default=[1, 2],
                        help="numbers of client nodes to try (default: 1 2)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    results = [run(n, args.count, args.max_clients) for n in args.client_nodes]
    print(table("client launches (each client a `true` process in its own group)",
                ["client nodes", "launched", "exited 0", "wall s", "launches/s",
                 "per node (traffic controller)"],
                [[r["client_nodes"], r["launched"], r["exited_ok"], r["wall_seconds"],
                  r["overall_rate"], " ".join(f"{v:.0f}" for v in r["per_node_rate"].values())]
                 for r in results]))
    path = write_json("launch-rate", {"results": results}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results}
