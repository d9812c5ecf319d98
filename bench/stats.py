"""Stats: how faithful SEER's link rates are, and what the pipeline costs.

* Fidelity (testbed, examples/topologies/demo.toml): CBR from client1 to
  server1 at 1, 5 and 10 Mbit/s; the rate of the link it crosses last
  (``servers``) from SEER's aggregates over 10 s, against an nftables
  counter in server1's namespace (the receiving side; never the interface
  counter SEER reads), both at the link layer (nftables' IP bytes + 14 per
  packet).  Target: within 2%.
* Overhead on the testbed: the pollers' CPU per node at 1 s (their own
  measure of the reactor thread's CPU, target <= 0.5% of a core), and the
  bytes per second each node's TLS link carries to the controller while
  idle (STATS frames, with the heartbeats and REPORTs besides).
* The controller with 100 simulated nodes x 30 series at 1 s: its CPU with
  stats on and off (target <= 5% of a core more), the bytes per second of
  stats per node (on minus off), and apart, the CPU one /metrics scrape of
  those series costs it (prometheus-client writes ~3,600 samples): a
  Prometheus scraping every second adds that much a second.
* Fan-out N=100 (real daemon processes, `bench fanout`): p50 with stats on
  (the default) and off; target: within 10%.  Runs of the same code differ
  by a quarter at N=100, so the two are measured ``--pairs`` times (3)
  in alternating order (on, off; off, on; ...) and the medians compared.

Each part can be left out; the machine's load is recorded with every figure
(2 cores shared with others: figures mean something only when it is low).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.cluster import Cluster
from bench.common import add_json_flag, positive, positive_number, process_cpu, table, write_json

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "topologies" / "demo.toml"
SYNTHETIC = Path(__file__).resolve().parent / "pollers"
RATES = (1e6, 5e6, 10e6)


def load() -> float:
    return os.getloadavg()[0]


def _window_mean(history: dict, key: str, start: float, end: float) -> float | None:
    values = [v for t, v in zip(history["times"], history["series"].get(key, []), strict=False)
              if start < t <= end and v is not None]
    return statistics.fmean(values) if values else None


def fidelity_and_testbed_overhead(window: float) -> dict:
    from seer.client import Experiment
    from seer.testbed import build, runner
    from seer.testbed.nftcount import Counter, bits_per_second
    from seer.testbed.topology import load_topology

    topology = load_topology(DEMO, f"bst{os.getpid() % 10000}")
    testbed = runner.up(topology)
    results: dict = {"rates": []}
    try:
        c = testbed["client"]
        with Experiment(c["controller"], c["certs"], c["identity"]) as exp:
            # Idle: the pollers' CPU and the bytes each node's link carries.
            before = exp.status()["node_tls_bytes"]["in"]
            started = time.time()
            time.sleep(window)
            elapsed = time.time() - started
            nodes = exp.stats(history=window)["aggregate"]["nodes"]
            results["idle_load"] = round(load(), 2)
            results["tls_bytes_per_s_per_node"] = round(
                (exp.status()["node_tls_bytes"]["in"] - before) / elapsed / len(nodes), 1)
            cpu = [n["pollers_cpu_percent"] for n in nodes.values()
                   if n.get("pollers_cpu_percent") is not None]
            results["pollers_cpu_percent"] = {"mean": round(statistics.fmean(cpu), 3),
                                              "max": round(max(cpu), 3)}
            for rate in RATES:
                results["rates"].append(_one_rate(exp, testbed, rate, window, Counter,
                                                  bits_per_second, build))
    finally:
        runner.down(topology.name)
    return results


def _one_rate(exp, testbed, rate, window, Counter, bits_per_second, build) -> dict:
    sink = Counter(build.node_ns(testbed["name"], "server1"), 5001, hook="input")
    try:
        cbr = exp.agent("CBR", f"fid{int(rate / 1e6)}")
        cbr.set(senders="client1", sinks="server1", rate=f"{rate:.0f}", size=1000,
                duration=window + 8, target="client1,server1")
        cbr.start(target="client1,server1")
        first = None
        while first is None or first.packets < 2 * rate / 8000:  # two seconds in
            time.sleep(0.2)
            first = sink.read()
        end = first.time + window
        while time.time() < end:
            time.sleep(0.05)
        last = sink.read()
        # The aggregate of an interval holds readings taken up to an interval
        # before it: the window of aggregates is one interval later.
        time.sleep(2.5)
        history = exp.stats(history=window + 10, prefixes=["links/servers/"])["history"]
        seer = _window_mean(history, "links/servers/bps", first.time + 1, last.time + 1)
        independent = bits_per_second(first, last)
        cbr.stop(target="client1,server1")
    finally:
        sink.remove()
    error = seer / independent - 1 if seer else None
    print(f"  CBR {rate / 1e6:g} Mbit/s: SEER {seer / 1e6 if seer else 0:.4f} Mbit/s, "
          f"nftables {independent / 1e6:.4f} Mbit/s ({error:+.2%}), load {load():.2f}",
          flush=True)
    return {"cbr_bps": rate, "seer_bps": round(seer or 0), "independent_bps": round(independent),
            "error": round(error, 5) if error is not None else None, "load": round(load(), 2)}


def controller_cost(nodes: int, seconds: float, scrapes: int = 20) -> dict:
    """Controller CPU and TLS bytes in, simulated nodes, stats on (30 series) and off;
    then the CPU of /metrics scrapes."""
    out = {}
    for label, args in (("off", ["--stats-interval", "0"]),
                        ("on", ["--poller-dirs", str(SYNTHETIC), "--pollers", "interface"])):
        with tempfile.TemporaryDirectory(prefix="seer-bench-stats-") as workdir:
            with Cluster(workdir, nodes, per_process=-(-nodes // (os.cpu_count() or 2)),
                         daemon_args=args) as cluster:
                with cluster.experiment(timeout=60) as exp:
                    metrics = exp.status().get("metrics")
                    time.sleep(5)  # every node's first frames in
                    pid = cluster.controller.pid
                    cpu0, bytes0, t0 = process_cpu(pid), exp.status()["node_tls_bytes"]["in"], \
                        time.monotonic()
                    time.sleep(seconds)
                    cpu1, bytes1, t1 = process_cpu(pid), exp.status()["node_tls_bytes"]["in"], \
                        time.monotonic()
                    entry = {"controller_cpu_percent": round((cpu1 - cpu0) / (t1 - t0) * 100, 2),
                             "tls_bytes_per_s_per_node": round(
                                 (bytes1 - bytes0) / (t1 - t0) / nodes, 1),
                             "load": round(load(), 2)}
                    if label == "on":
                        entry["interfaces_aggregated"] = len(
                            exp.stats()["aggregate"].get("interfaces") or {})
                        # Scrapes back to back: the CPU each costs, stats running meanwhile
                        # (their share over the same time is taken off).
                        cpu2, t2 = process_cpu(pid), time.monotonic()
                        samples = 0
                        for _ in range(scrapes):
                            body = urllib.request.urlopen(metrics, timeout=30).read()
                            samples = sum(1 for line in body.splitlines()
                                          if line and not line.startswith(b"#"))
                        cpu3, t3 = process_cpu(pid), time.monotonic()
                        stats_share = (cpu1 - cpu0) / (t1 - t0) * (t3 - t2)
                        entry["scrape_cpu_ms"] = round((cpu3 - cpu2 - stats_share)
                                                       / scrapes * 1000, 1)
                        entry["scrape_samples"] = samples
            out[label] = entry
            print(f"  controller, {nodes} simulated nodes, stats {label}: "
                  f"{entry['controller_cpu_percent']}% CPU, load {load():.2f}", flush=True)
    out["stats_cpu_percent"] = round(out["on"]["controller_cpu_percent"]
                                     - out["off"]["controller_cpu_percent"], 2)
    out["stats_bytes_per_s_per_node"] = round(out["on"]["tls_bytes_per_s_per_node"]
                                              - out["off"]["tls_bytes_per_s_per_node"], 1)
    return out


def fanout_on_off(nodes: int, rounds: int, pairs: int = 3) -> dict:
    """Fan-out p50 with stats on and off: ``pairs`` runs of each, in
    alternating order so that a drift of the machine hits both alike; the
    medians, and every run."""
    from bench.fanout import measure

    settings = {"on": [], "off": ["--stats-interval", "0"]}
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    for pair in range(pairs):
        for label in (("on", "off") if pair % 2 == 0 else ("off", "on")):
            result = measure(nodes, 0, rounds, daemon_args=settings[label])
            runs[label].append({"p50_ms": result["latency_ms"]["p50"],
                                "p95_ms": result["latency_ms"]["p95"],
                                "load": round(load(), 2)})
            print(f"  fan-out N={nodes}, stats {label} ({pair + 1}/{pairs}): p50 "
                  f"{runs[label][-1]['p50_ms']} ms, load {load():.2f}", flush=True)
    out: dict = {"pairs": pairs, "runs": runs}
    for label, done in runs.items():
        out[label] = {key: round(statistics.median(r[key] for r in done), 2)
                      for key in ("p50_ms", "p95_ms", "load")}
    out["p50_ratio"] = round(out["on"]["p50_ms"] / out["off"]["p50_ms"], 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench stats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=positive_number, default=10.0,
                        help="seconds each rate is measured over (default 10)")
    parser.add_argument("--nodes", type=positive, default=100,
                        help="nodes for the controller and fan-out parts (default 100)")
    parser.add_argument("--seconds", type=positive_number, default=20.0,
                        help="seconds the controller's CPU is measured (default 20)")
    parser.add_argument("--rounds", type=positive, default=50,
                        help="fan-out commands per run (50)")
    parser.add_argument("--pairs", type=positive, default=3,
                        help="fan-out runs with stats on and with them off, alternating; "
                             "the medians are compared (3)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("testbed", "controller", "fanout"), help="leave a part out")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    result: dict = {"load_at_start": round(load(), 2)}
    rows = []
    if "testbed" not in args.skip:
        from seer.testbed.netns import can_build

        why = can_build()
        if why is None:
            result["testbed"] = bed = fidelity_and_testbed_overhead(args.window)
            for r in bed["rates"]:
                rows.append([f"fidelity CBR {r['cbr_bps'] / 1e6:g} Mbit/s (link servers)",
                             f"{r['error']:+.2%}" if r["error"] is not None else "-",
                             "within 2%", r["load"]])
            rows.append(["pollers' CPU per node at 1 s (mean/max)",
                         f"{bed['pollers_cpu_percent']['mean']:.3f}% / "
                         f"{bed['pollers_cpu_percent']['max']:.3f}%", "<= 0.5%",
                         bed["idle_load"]])
            rows.append(["TLS bytes/s per node, idle testbed", bed["tls_bytes_per_s_per_node"],
                         "-", bed["idle_load"]])
        else:
            print(f"testbed part left out: {why}")
    if "controller" not in args.skip:
        result["controller"] = ctl = controller_cost(args.nodes, args.seconds)
        rows.append([f"controller CPU, {args.nodes} nodes x 30 series, stats on - off",
                     f"{ctl['stats_cpu_percent']:.2f}% ({ctl['on']['controller_cpu_percent']}"
                     f" - {ctl['off']['controller_cpu_percent']})", "<= 5%", ctl["on"]["load"]])
        rows.append(["stats bytes/s per node (30 series)", ctl["stats_bytes_per_s_per_node"],
                     "-", ctl["on"]["load"]])
        rows.append([f"controller CPU per /metrics scrape ({ctl['on']['scrape_samples']} "
                     "samples)", f"{ctl['on']['scrape_cpu_ms']} ms "
                     f"({ctl['on']['scrape_cpu_ms'] / 10:.1f}% at 1 s, "
                     f"{ctl['on']['scrape_cpu_ms'] / 150:.2f}% at 15 s)", "-", ctl["on"]["load"]])
    if "fanout" not in args.skip:
        result["fanout"] = fan = fanout_on_off(args.nodes, args.rounds, args.pairs)
        rows.append([f"fan-out N={args.nodes} p50, stats on / off (median of {fan['pairs']})",
                     f"{fan['on']['p50_ms']} / {fan['off']['p50_ms']} ms "
                     f"(x{fan['p50_ratio']})", "within 10%", fan["on"]["load"]])
    print(table("stats: fidelity and overhead", ["measure", "result", "target", "load (1 min)"],
                rows))
    path = write_json("stats", result, args.json)
    print(f"\nJSON: {path}")
    return result
