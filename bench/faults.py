"""Faults injected and survived: the long versions of tests/faults' fuzz smoke.

One controller and one daemon on 127.0.0.1, and a hostile peer
(bench/hostile.py) that first registers as a compromised node to learn the
HMAC key, then:

1. sends --datagrams fuzzed datagrams (default 1,000,000) to the group, at
   most --rate a second: random bytes, truncated, another version, an
   unknown kind, oversized (rarely: 65 kB each), a bad HMAC, and the
   compromised node's forgeries (the right HMAC, no valid signature, a
   command to run).  The daemon is the target: it is what receives the
   group's datagrams (the controller's multicast socket only sends);
2. opens --connections garbage connections (default 10,000) to the
   controller's TLS port, at most --connection-rate a second, 8 at a time:
   random bytes, a reset, TLS without a certificate, with another
   experiment's CA, an experimenter's TLS followed by a garbage frame.

After each, a command must be applied on the daemon (still serving), the
daemon must have dispatched nothing but the benchmark's own commands, and
the RSS of both processes is read (before and after).  The table says what
was injected, what the kernel dropped before the daemon could read it (a
full receive queue), what the daemon and the controller counted, and how
many log lines it all cost.  Every phase stops by itself: at its count, or
at twice its planned time plus a minute.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import hostile
from bench.common import add_json_flag, positive, process_memory_mb, table, write_json
from seer.localrun import LocalExperiment
from seer.protocol import certs

#: The mix of fuzzed datagrams, by weight (oversized ones are 65 kB each).
MIX = {"random": 1.0, "truncated": 1.0, "version": 1.0, "kind": 1.0, "oversized": 0.001,
       "mac": 1.0, "signature": 1.0}


def bounded_rate(ceiling: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 < value <= ceiling:
            raise argparse.ArgumentTypeError(f"{text!r} is not a rate above 0 and at most "
                                             f"{ceiling:g} a second")
        return value
    return parse


class Bench:
    """The lab, its hostile peer, and what is read from both."""

    def __init__(self, workdir: Path) -> None:
        certs.init(workdir / "foreign", ["n1"], ["alice"], experiment="other")
        self.lab = LocalExperiment(workdir / "lab", ["n1", "intruder"])
        self.foreign = workdir / "foreign"
        self.own_commands = 0

    def start(self) -> None:
        lab = self.lab
        lab.make_certs()
        lab.start_controller()
        lab.start_daemon("n1")
        lab.wait_registered(["n1"])
        self.stolen = hostile.register_as(lab.address, lab.certs, "intruder")
        with lab.experiment() as exp:
            hostile.forget(exp, "intruder")
            exp.set("NOOP", "alive", {"note": "still serving"})
        self.own_commands = 1

    def rss(self) -> dict[str, float]:
        return {"controller": process_memory_mb(self.lab.controller.pid)["rss"],
                "daemon": process_memory_mb(self.lab.daemons["n1"].pid)["rss"]}

    def kernel_drops(self) -> int:
        return sum(s["drops"] for s in hostile.udp_sockets(self.lab.daemons["n1"].pid)
                   if s["port"] == self.lab.group_port)

    def serving(self) -> bool:
        """A command applied on the daemon, then fresh counters from it."""
        with self.lab.experiment(timeout=60) as exp:
            ok = exp.command("NOOP", "alive", "ECHO", timeout=30, check=False).ok
        self.own_commands += 1
        return ok and self.lab.controller.poll() is None and self.lab.daemons["n1"].poll() is None

    def daemon_counters(self, fresh: bool = True) -> dict[str, int]:
        """The daemon's counters; ``fresh``: once they include the last
        command -- a drop (a notable change, one truncated datagram: the
        sentinel) makes the daemon send them within 5 s."""
        if fresh:
            sender = hostile.GroupSender(self.lab.group, self.lab.group_port)
            try:
                sender.send([b"sentinel"], count=1, rate=1, seconds=1)
            finally:
                sender.close()
        deadline = time.monotonic() + (30 if fresh else 0)
        while True:
            with self.lab.experiment() as exp:
                stats = next(n for n in exp.nodes() if n["name"] == "n1").get("stats") or {}
            if stats.get("dispatched", 0) >= self.own_commands or time.monotonic() > deadline:
                return stats
            time.sleep(0.5)

    def controller_counters(self) -> dict[str, int]:
        with self.lab.experiment() as exp:
            return exp.status()["counters"]

    def log_lines(self, name: str, text: str) -> int:
        return (self.lab.workdir / f"{name}.log").read_text(errors="replace").count(text)


def datagrams(bench: Bench, count: int, rate: float) -> dict[str, Any]:
    lab = bench.lab
    before = {"rss": bench.rss(), "drops": bench.kernel_drops(),
              "counters": bench.daemon_counters(fresh=False)}
    made: Counter = Counter()
    sender = hostile.GroupSender(lab.group, lab.group_port)
    started = time.monotonic()
    try:
        sent = sender.send(hostile.fuzz_stream(MIX, random.Random(1), bench.stolen,
                                               bench.stolen.epoch, made),
                           count=count, rate=rate, seconds=2 * count / rate + 60)
    finally:
        sender.close()
    took = time.monotonic() - started
    hostile.wait_read([lab.daemons["n1"].pid], lab.group_port, timeout=120)
    serving = bench.serving()
    counters = bench.daemon_counters()
    delta = {k: counters.get(k, 0) - before["counters"].get(k, 0) for k in counters}
    reasons = {kind: delta.get(reason, 0) for kind, reason in hostile.DATAGRAM_KINDS.items()}
    return {"fault": "fuzzed datagrams at the daemon", "injected": sent, "seconds": round(took, 1),
            "rate": round(sent / took), "send_errors": sender.errors, "by_kind": dict(made),
            "kernel_dropped": bench.kernel_drops() - before["drops"],
            "received": delta.get("datagrams", 0),
            "counted_by_reason": reasons, "counted": sum(reasons.values()) - 1,  # the sentinel
            # Nothing else dispatches: the benchmark's own SET and ECHO aside, none.
            "dispatched": counters.get("dispatched", 0) - bench.own_commands,
            "still_serving": serving,
            "rss_before": before["rss"], "rss_after": bench.rss(),
            "log_lines": bench.log_lines("n1", "dropped a datagram")}


def connections(bench: Bench, count: int, rate: float) -> dict[str, Any]:
    lab = bench.lab
    before = {"rss": bench.rss(), "counters": bench.controller_counters(),
              "lines": bench.log_lines("controller", "closed before TLS completed")}
    door = hostile.Door(lab.address, lab.certs, bench.foreign, "experimenter")
    started = time.monotonic()
    made, results = hostile.hammer(door, hostile.CONNECTION_KINDS, count=count, rate=rate,
                                   seconds=2 * count / rate + 60)
    took = time.monotonic() - started
    serving = bench.serving()
    counters = bench.controller_counters()
    daemon = bench.daemon_counters()
    delta = {k: counters.get(k, 0) - before["counters"].get(k, 0) for k in counters}
    injected = sum(made.values())
    return {"fault": "garbage connections at the controller", "injected": injected,
            "seconds": round(took, 1), "rate": round(injected / took),
            "by_kind": dict(made), "results": dict(results),
            "answered_without_a_valid_certificate": sum(
                n for r, n in results.items() if "ANSWERED" in r),
            "pre_tls_failures": delta.get("pre_tls_failures", 0),
            "bad_frames": sum(v for k, v in delta.items() if k.startswith("bad_frames_")),
            "dispatched": daemon.get("dispatched", 0) - bench.own_commands,
            "still_serving": serving,
            "rss_before": before["rss"], "rss_after": bench.rss(),
            "log_lines": bench.log_lines("controller", "closed before TLS completed")
            - before["lines"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datagrams", type=positive, default=1_000_000,
                        help="fuzzed datagrams sent to the daemon (default 1000000)")
    parser.add_argument("--rate", type=bounded_rate(hostile.MAX_DATAGRAM_RATE),
                        default=10_000.0, help="datagrams per second at most (default 10000, "
                        f"ceiling {hostile.MAX_DATAGRAM_RATE:g})")
    parser.add_argument("--connections", type=positive, default=10_000,
                        help="garbage connections to the controller (default 10000)")
    parser.add_argument("--connection-rate", type=bounded_rate(hostile.MAX_CONNECTION_RATE),
                        default=200.0, help="connections per second at most (default 200, "
                        f"ceiling {hostile.MAX_CONNECTION_RATE:g})")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="seer-faults-") as workdir:
        bench = Bench(Path(workdir))
        try:
            bench.start()
            results = [datagrams(bench, args.datagrams, args.rate),
                       connections(bench, args.connections, args.connection_rate)]
        finally:
            bench.lab.stop()
    load = {"before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()]}
    rows = []
    for r in results:
        refused = (f"{r['kernel_dropped']} by the kernel, {r['counted']} counted"
                   if "counted" in r else
                   f"{r['pre_tls_failures']} before TLS, {r['bad_frames']} bad frames")
        rows.append([r["fault"], r["injected"], f"{r['rate']}/s", refused, r["dispatched"],
                     "yes" if r["still_serving"] else "NO",
                     f"{r['rss_before']['controller']:.1f} -> {r['rss_after']['controller']:.1f}",
                     f"{r['rss_before']['daemon']:.1f} -> {r['rss_after']['daemon']:.1f}",
                     r["log_lines"]])
    print(table(f"faults injected and survived (load average {load['before'][0]:.1f} before, "
                f"{load['after'][0]:.1f} after)",
                ["fault", "injected", "rate", "dropped / refused", "dispatched",
                 "still serving", "controller RSS MB", "daemon RSS MB", "log lines"], rows))
    kinds = results[0]
    print()
    print(table("datagrams by kind: sent, and counted by the daemon under its reason",
                ["kind", "reason", "sent", "counted"],
                [[k, hostile.DATAGRAM_KINDS[k], kinds["by_kind"].get(k, 0),
                  kinds["counted_by_reason"][k] - (k == "truncated")]
                 for k in hostile.DATAGRAM_KINDS]))
    path = write_json("faults", {"results": results, "load": load}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results, "load": load}
