"""Fan-out latency: a COMMAND to a no-op agent until the client holds every
node's outcome; against the floor (one datagram, minimal UDP answers).

``--isolate all`` runs NOOP, a shipped agent that runs inline by default,
in a worker process of its own on each node: the cost of the hop to an
isolated agent.

For each N: a controller and N daemons on 127.0.0.1 (daemon processes, or
"simulated" nodes: many daemons per process -- by default as many processes
as CPUs -- each with its own TLS connection, multicast socket, signature
check and agent); ROUNDS commands one after the other, each
NOOP ECHO to every node, timed from the client's send to the RESULT with
all N outcomes.  The floor runs in the same invocation with N receivers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench import floor
from bench.cluster import Cluster
from bench.common import (add_json_flag, machine_cpu, positive, process_cpu, summary_ms,
                          table, write_json)

#: The daemons' isolate setting (backend.runtime.agentloader.ISOLATE_MODES).
ISOLATE_MODES = ("auto", "all", "none")


def parse_sizes(text: str) -> list[tuple[int, bool]]:
    """'10,50,100,1000s' -> [(10, False), (50, False), (100, False), (1000, True)]:
    N, and whether the nodes are simulated (many per process)."""
    sizes = []
    for item in text.split(","):
        item = item.strip()
        simulated = item.endswith("s")
        digits = item[:-1] if simulated else item
        if not digits.isdigit() or int(digits) < 1:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a node count: give numbers like 10 or, simulated, 1000s")
        sizes.append((int(digits), simulated))
    return sizes


def measure(n: int, per_process: int, rounds: int, isolate: str | None = None,
            daemon_args: list[str] = ()) -> dict:
    """``daemon_args``: more flags for every daemon (bench stats: --stats-interval 0)."""
    with tempfile.TemporaryDirectory(prefix="seer-fanout-") as workdir:
        cluster = Cluster(workdir, n, per_process=per_process,
                          daemon_args=(["--isolate", isolate] if isolate else [])
                          + list(daemon_args))
        with cluster:
            with cluster.experiment(timeout=30) as exp:
                group = exp.agent("NOOP", "fanout")
                group.set({"note": "fan-out"})  # makes the group (a bare command may not)
                group.command("ECHO")  # warm up: instances (and workers) up, caches hot
                cpu = CpuMeter(cluster)
                latencies = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    result = group.command("ECHO", check=False)
                    latencies.append(time.perf_counter() - started)
                    if not result.ok:
                        raise RuntimeError(result.problem_summary())
                spent = cpu.per_command(rounds, n)
                busy = cpu.machine_share()
            registered = cluster.registered_in
    return {"nodes": n, "simulated": bool(per_process), "per_process": per_process or 1,
            "isolate": isolate or "auto",
            "processes": -(-n // per_process) if per_process else n,
            "registered_in": round(registered, 2), "latency_ms": summary_ms(latencies),
            "cpu_ms_per_command": spent, "machine_load": busy}


class CpuMeter:
    """CPU time (user + system, from /proc) the controller, the daemons and
    this client spend: per command, per process kind -- wall time would
    charge a process for the time it waited while a hundred others ran.

    And what else the machine did meanwhile, as shares of its CPUs: ``others``,
    the CPU of processes that are not the benchmark's, and ``steal``, time the
    hypervisor gave other guests.  A busy machine makes every process slower
    (caches, cores): these say when a figure was measured on one."""

    def __init__(self, cluster: Cluster) -> None:
        self.controller = cluster.controller.pid
        self.daemons = [p.pid for p in cluster.daemons.values()]
        self.before = self._read()
        self.machine_before = machine_cpu()

    def _read(self) -> tuple[float, float, float]:
        return (process_cpu(self.controller), sum(process_cpu(p) for p in self.daemons),
                time.process_time())

    def per_command(self, commands: int, nodes: int) -> dict[str, float]:
        after = self._read()
        controller, daemons, client = (b - a for a, b in zip(self.before, after))
        return {"controller": round(controller / commands * 1000, 3),
                "per_node": round(daemons / nodes / commands * 1000, 3),
                "client": round(client / commands * 1000, 3)}

    def machine_share(self) -> dict[str, float]:
        """Percent of the machine's CPU time since the start: others', and steal."""
        now, then = machine_cpu(), self.machine_before
        ours = sum(b - a for a, b in zip(self.before, self._read()))
        total = max(now["total"] - then["total"], 1e-9)
        others = max(0.0, now["busy"] - then["busy"] - ours)
        return {"others_pct": round(100 * others / total, 1),
                "steal_pct": round(100 * (now["steal"] - then["steal"]) / total, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench fanout", description=__doc__)
    parser.add_argument("--sizes", type=parse_sizes, default="10,50,100,1000s",
                        help="node counts; 's' = simulated, spread over --processes "
                             "processes (default: 10,50,100,1000s)")
    parser.add_argument("--processes", type=positive, default=os.cpu_count() or 2,
                        help="processes the simulated nodes are spread over (default: one "
                             "per CPU, here %(default)s)")
    parser.add_argument("--rounds", type=positive, default=200, help="commands per size (200)")
    parser.add_argument("--isolate", choices=ISOLATE_MODES, default=None,
                        help="the daemons' isolate setting: 'all' runs NOOP (a shipped agent, "
                             "inline by default) in a worker process per node, to time the "
                             "hop through an isolated agent (default: the daemons' own, auto)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    rows, results = [], []
    for n, simulated in args.sizes:
        per_process = -(-n // args.processes) if simulated else 0
        seer = measure(n, per_process, args.rounds, args.isolate)
        floor_ms = summary_ms(floor.measure(n, args.rounds))
        seer["floor_ms"] = floor_ms
        seer["ratio_p50"] = round(seer["latency_ms"]["p50"] / floor_ms["p50"], 1)
        results.append(seer)
        lat = seer["latency_ms"]
        label = f"{n} sim/{seer['processes']} proc" if per_process else str(n)
        cpu = seer["cpu_ms_per_command"]
        rows.append([label, lat["p50"], lat["p95"], lat["p99"],
                     lat["max"], floor_ms["p50"], seer["ratio_p50"], cpu["controller"],
                     cpu["per_node"], seer["machine_load"]["others_pct"],
                     seer["machine_load"]["steal_pct"], seer["registered_in"]])
        print(f"  N={n}: p50 {lat['p50']} ms (floor {floor_ms['p50']} ms)", flush=True)
    where = f"; isolate={args.isolate}" if args.isolate else ""
    print(table(f"fan-out latency, ms ({args.rounds} commands each; NOOP ECHO to every node"
                f"{where})",
                ["nodes", "p50", "p95", "p99", "max", "floor p50", "x floor",
                 "ctl CPU ms", "node CPU ms", "others %", "steal %", "registered s"],
                rows))
    path = write_json("fanout", {"results": results, "rounds": args.rounds}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results}
