"""Loss recovery: 1,000 commands with a share of the control datagrams lost.

Every daemon drops a share of the multicast datagrams it receives, before
verification (`seer daemon --rx-drop`); with --testbed, nftables drops them
on the namespace testbed's control bridge instead.  The client sends 1,000
SEQ NEXT commands numbered 0..999 -- paced, so each is a datagram of its own
(the hard case), or as one burst -- and measures the time from sending the
last command until every daemon has applied every command (the last
command's outcome from every node: a node delivers in order, so it has the
999 before too).  Each daemon's SEQ agent counts duplicates and reorderings,
which must both be zero.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench.cluster import Cluster
from bench.common import (
    AGENTS,
    add_json_flag,
    drop_share,
    positive,
    rate_or_burst,
    table,
    write_json,
)

COMMANDS = 1000


def send_all(exp, rate: float | None) -> tuple[float, object]:
    group = exp.agent("SEQ", "loss")
    group.command("START")  # makes the group and counts from scratch
    pending = []
    for i in range(COMMANDS):
        pending.append(group.submit("NEXT", {"i": i}, timeout=60))
        if rate:
            time.sleep(1.0 / rate)
    last_sent = time.monotonic()
    results = [p.result(check=False) for p in pending]
    return time.monotonic() - last_sent, results


def check(exp) -> dict:
    stats = exp.agent("SEQ", "loss").stats()
    counters = [s.get("counters") or {} for s in stats.values()]
    return {"nodes_complete": sum(1 for c in counters if c.get("received") == COMMANDS),
            "duplicates": sum(c.get("duplicates", 0) for c in counters),
            "reorderings": sum(c.get("reorderings", 0) for c in counters)}


def loopback(n: int, drop: float, rate: float | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="seer-loss-") as workdir:
        with Cluster(workdir, n, daemon_args=["--rx-drop", str(drop)]) as cluster:
            with cluster.experiment(timeout=60) as exp:
                took, results = send_all(exp, rate)
                outcome = check(exp)
                # The controller's count: nodes report theirs only every few seconds.
                repairs = exp.status()["counters"].get("repairs_sent", 0)
    return dict(outcome, completed_after_s=round(took, 3), all_applied=all(r.ok for r in results),
                repairs_sent=repairs)


def testbed(drop: float, rate: float | None) -> dict:
    from seer.client import Experiment
    from seer.testbed import build, runner
    from seer.testbed.topology import load_topology

    root = os.path.join(os.path.dirname(__file__), "..", "examples", "topologies", "star20.toml")
    topology = load_topology(root, f"loss{os.getpid() % 1000}")
    bed = runner.up(topology, control_loss=drop)
    try:
        c = bed["client"]
        with Experiment(c["controller"], c["certs"], c["identity"], timeout=60) as exp:
            exp.put_agent(AGENTS / "seq.py")  # the testbed's daemons do not ship it
            took, results = send_all(exp, rate)
            outcome = check(exp)
            repairs = exp.status()["counters"].get("repairs_sent", 0)
        dropped = build.control_loss_counters(topology.name)
    finally:
        runner.down(topology.name)
    return dict(outcome, completed_after_s=round(took, 3), all_applied=all(r.ok for r in results),
                repairs_sent=repairs, dropped_on_bridge=dropped)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench loss", description=__doc__)
    parser.add_argument("--drops", type=drop_share, nargs="+", default=[0.05, 0.2],
                        help="shares of datagrams dropped, one run each (default 0.05 0.2)")
    parser.add_argument("--nodes", type=positive, default=10, help="daemons (default 10)")
    parser.add_argument("--rate", type=rate_or_burst, default=200.0,
                        help="commands per second when paced (default 200; 0 = one burst)")
    parser.add_argument("--testbed", action="store_true",
                        help="drop on a namespace testbed's control bridge (20 nodes; root)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    rows, results = [], []
    for drop in args.drops:
        for rate in ([args.rate, None] if args.rate else [None]):
            r = testbed(drop, rate) if args.testbed else loopback(args.nodes, drop, rate)
            r.update(drop=drop, paced_rate=rate, where="testbed bridge" if args.testbed
                     else "daemons' receive path")
            results.append(r)
            rows.append([f"{drop:.0%}", f"{rate:.0f}/s" if rate else "burst",
                         r["completed_after_s"], f"{r['nodes_complete']}",
                         r["duplicates"], r["reorderings"], r["repairs_sent"]]
                        + ([r["dropped_on_bridge"]] if args.testbed else []))
    where = "on the testbed's control bridge (nftables)" if args.testbed else \
        f"at the receive path of {args.nodes} daemons"
    print(table(f"loss recovery: {COMMANDS} commands, datagrams dropped {where}",
                ["loss", "sent", "complete after s", "nodes complete", "duplicates",
                 "reorderings", "repairs"] + (["dropped"] if args.testbed else []), rows))
    path = write_json("loss", {"results": results}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results}
