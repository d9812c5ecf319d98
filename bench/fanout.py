"""Fan-out latency: a COMMAND to a no-op agent until the client holds every
node's outcome; against the floor (one datagram, minimal UDP answers).

For each N: a controller and N daemons on 127.0.0.1 (daemon processes, or
"simulated" nodes: many daemons per process, each with its own TLS
connection and multicast socket); ROUNDS commands one after the other, each
NOOP ECHO to every node, timed from the client's send to the RESULT with
all N outcomes.  The floor runs in the same invocation with N receivers.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from bench import floor
from bench.cluster import Cluster
from bench.common import summary_ms, table, write_json


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'10,50,100,1000s' -> [(10, 0), (50, 0), (100, 0), (1000, 100)]: N and
    nodes per process (0: a process each; 's' suffix: simulated, 100 each)."""
    sizes = []
    for item in text.split(","):
        item = item.strip()
        if item.endswith("s"):
            sizes.append((int(item[:-1]), 100))
        else:
            sizes.append((int(item), 0))
    return sizes


def measure(n: int, per_process: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="seer-fanout-") as workdir:
        cluster = Cluster(workdir, n, per_process=per_process)
        with cluster:
            with cluster.experiment(timeout=30) as exp:
                group = exp.agent("NOOP", "fanout")
                group.command("ECHO")  # warm up: instances created, caches hot
                latencies = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    result = group.command("ECHO", check=False)
                    latencies.append(time.perf_counter() - started)
                    if not result.ok:
                        raise RuntimeError(result.problem_summary())
            registered = cluster.registered_in
    return {"nodes": n, "simulated": bool(per_process), "per_process": per_process or 1,
            "registered_in": round(registered, 2), "latency_ms": summary_ms(latencies)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench fanout", description=__doc__)
    parser.add_argument("--sizes", default="10,50,100,1000s",
                        help="node counts; 's' = simulated, 100 per process (default: "
                             "10,50,100,1000s)")
    parser.add_argument("--rounds", type=int, default=200, help="commands per size (200)")
    parser.add_argument("--json", metavar="PATH",
                        help="where to write the JSON (default bench/results/NAME-TIME.json)")
    args = parser.parse_args(argv)
    rows, results = [], []
    for n, per_process in parse_sizes(args.sizes):
        seer = measure(n, per_process, args.rounds)
        floor_ms = summary_ms(floor.measure(n, args.rounds))
        seer["floor_ms"] = floor_ms
        seer["ratio_p50"] = round(seer["latency_ms"]["p50"] / floor_ms["p50"], 1)
        results.append(seer)
        lat = seer["latency_ms"]
        rows.append([f"{n}{' sim' if per_process else ''}", lat["p50"], lat["p95"], lat["p99"],
                     lat["max"], floor_ms["p50"], seer["ratio_p50"], seer["registered_in"]])
        print(f"  N={n}: p50 {lat['p50']} ms (floor {floor_ms['p50']} ms)", flush=True)
    print(table(f"fan-out latency, ms ({args.rounds} commands each; NOOP ECHO to every node)",
                ["nodes", "p50", "p95", "p99", "max", "floor p50", "x floor", "registered s"],
                rows))
    path = write_json("fanout", {"results": results, "rounds": args.rounds}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results}
