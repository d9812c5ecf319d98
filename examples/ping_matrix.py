"""A ping matrix: every node pings every other node; a table of RTTs.

    seer run examples/ping_matrix.py [--count 10] [--interval 0.2]

Each node runs one PING group to all the others at the same moment (the
START is scheduled a second ahead), and reports each target's RTT and loss;
the script collects the reports and prints the matrix of average RTTs (ms)
and any loss.
"""

from __future__ import annotations

import argparse

from seer.client import Experiment

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--count", type=int, default=10, help="echoes per pair (default 10)")
parser.add_argument("--interval", type=float, default=0.2, help="seconds between echoes")
args = parser.parse_args()

with Experiment() as exp:
    nodes = sorted(n["name"] for n in exp.nodes() if n["up"] and n["addresses"])
    ping = exp.agent("PING", "matrix")
    # Every node pings all the others: a per-node value of `targets`.
    ping.set(targets={node: [o for o in nodes if o != node] for node in nodes},
             count=args.count, interval=args.interval)
    exp.subscribe()
    started = exp.at(exp.now() + 1.0, ping, target=nodes).result()
    print(f"{len(nodes)} nodes, {len(nodes) * (len(nodes) - 1)} pairs, {args.count} echoes each "
          f"(start skew across nodes {started.skew() * 1000:.1f} ms)")
    pairs = len(nodes) * (len(nodes) - 1)
    results: dict[tuple[str, str], dict] = {}
    for frame in exp.events(timeout=args.count * args.interval + 15):
        if frame.type == "REPORT" and frame.get("event") == "ping_done" \
                and frame.get("group") == "matrix":
            results[(frame.get("node"), frame.get("data")["target"])] = frame.get("data")
            if len(results) == pairs:
                break
    width = max(len(n) for n in nodes) + 1
    print("average RTT in ms, from (rows) to (columns):")
    print(" " * width + "".join(f"{n:>{width}}" for n in nodes))
    losses = []
    for source in nodes:
        cells = []
        for target in nodes:
            result = results.get((source, target))
            if source == target:
                cells.append("-")
            elif result is None or result["rtt_avg"] is None:
                cells.append("?")
            else:
                cells.append(f"{result['rtt_avg']:.2f}")
                if result["loss"]:
                    losses.append(f"{source}->{target} {result['loss']:.0%}")
        print(f"{source:<{width}}" + "".join(f"{c:>{width}}" for c in cells))
    missing = pairs - len(results)
    print(f"loss: {', '.join(losses) or 'none'}" + (f"; {missing} pairs did not report" if missing else ""))
    raise SystemExit(1 if missing else 0)
