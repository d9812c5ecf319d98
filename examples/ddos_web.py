"""Background web traffic, a DDoS flood in the middle, a capture on the bottleneck.

On the demo testbed (examples/topologies/demo.toml)::

    seer testbed up examples/topologies/demo.toml
    seer run examples/ddos_web.py              # --phase 10 for a shorter run

Three phases of --phase seconds each: before, during and after a UDP flood
from spoofed sources that overloads the 20 Mbit/s bottleneck in front of
the server.  Web clients fetch from the server all along, and the clients
ping it in every phase.  It prints the victim's request success rate and
the ping RTTs per phase, a per-node summary, and leaves the bottleneck
capture in results/; it marks the phases (exp.mark), so the run's report
(results/report/index.html) shades them on every plot.
"""

from __future__ import annotations

import argparse

from seer.client import Experiment

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--phase", type=float, default=20.0, help="seconds per phase (default 20)")
parser.add_argument("--rate", type=float, default=8000, help="flood packets/s (default 8000)")
parser.add_argument("--max-time", type=float, default=1.0,
                    help="seconds a web request may take before it counts as failed (default 1)")
parser.add_argument("--victim", default="server1")
parser.add_argument("--clients", default="client1 client2 client3")
parser.add_argument("--attacker", default="attacker")
parser.add_argument("--spoofed", default="198.18.2.128/25", help="flood source range")
parser.add_argument("--bottleneck", default="router:eth3", help="NODE:INTERFACE to capture on")
args = parser.parse_args()
router, interface = args.bottleneck.split(":")
clients = args.clients.split()
P = args.phase

with Experiment() as exp:  # under `seer run`, leaving the block stops every group started
    web = exp.agent("HTTP", "background")
    web.set(servers=args.victim, clients=args.clients, think="expo(0.2)",
            sizes="pareto(1.4,5000,100000)", max_time=args.max_time)
    capture = exp.agent("TCPDUMP", "bottleneck")
    capture.set(interfaces=interface, filter=f"udp and src net {args.spoofed}", snaplen=64)
    flood = exp.agent("FLOODER", "ddos")
    flood.set(targets=args.victim, type="udp", size=1400, rate=args.rate, duration=P,
              sources=args.spoofed)

    print(f"t={exp.now():5.1f}  capture on {router} {interface}; web traffic starts")
    capture.start(target=router)
    web.start(target=f"{args.victim},{args.clients}")
    start = exp.now() + 2.0  # servers up, clients warmed up

    # Each phase: schedule its pings ahead (nodes act together at the phase's
    # start, whatever the datagram's travel time), then read the counters.
    # The phase is marked for that same moment: the run's report shades it.
    phases = {}
    flood_start = exp.at(start + P, flood, target=args.attacker)
    for n, name in enumerate(("before", "during", "after")):
        t = start + n * P
        exp.mark(name, at=exp.time(t))
        ping = exp.agent("PING", f"rtt-{name}")
        ping.set(targets=args.victim, interval=0.2, count=int(P / 0.2) - 2)
        started = exp.at(t, ping, target=args.clients)
        exp.sleep_until(t)
        counts = [sum(web.counter(c).values()) for c in ("requests", "errors", "seconds")]
        if name == "during":
            flood_start.result()
            print(f"t={exp.now():5.1f}  flood: {args.rate:.0f} packets/s from {args.spoofed} "
                  f"to {args.victim}")
        exp.sleep_until(t + P / 2)
        bottleneck = (exp.stats()["aggregate"].get("links") or {}).get("servers") or {}
        if bottleneck:  # the controller's aggregate of the nodes' readings (seer stats)
            print(f"t={exp.now():5.1f}  bottleneck: {bottleneck['bps'] / 1e6:.1f} Mbit/s, "
                  f"{bottleneck.get('utilization', 0):.0%} of its rate, "
                  f"{bottleneck['drops_ps']:.0f} drops/s, {bottleneck['backlog_bytes'] / 1e3:.0f} kB "
                  "queued")
        exp.sleep_until(t + P)
        after = [sum(web.counter(c).values()) for c in ("requests", "errors", "seconds")]
        started.result()
        phases[name] = ([a - b for a, b in zip(after, counts, strict=True)], ping.stats())
        print(f"t={exp.now():5.1f}  {name} phase done")
    exp.end_phase(at=exp.time(start + 3 * P))

    web.stop()
    captured = capture.stop(target=router).outcomes[router].result
    pcap = f"TCPDUMP-bottleneck/capture-{interface}.pcap"
    exp.get(pcap, target=router, into="results")
    sent = flood.stats()[args.attacker]["floods"]

    print()
    print(f"the victim's web requests ({', '.join(clients)} -> {args.victim}), {P:g} s a phase:")
    print(f"{'phase':<8}{'requests':>9}{'failed':>7}{'success':>8}{'avg s':>7}  "
          f"{'ping rtt ms (min-max)':<24}{'loss':>5}")
    for name, ((requests, errors, seconds), rtts) in phases.items():
        targets = [r["targets"][args.victim] for r in rtts.values() if args.victim in r["targets"]]
        averages = [t["rtt_avg"] for t in targets if t["rtt_avg"] is not None]
        sent_pings = sum(t["sent"] for t in targets) or 1
        lost = 1 - sum(t["received"] for t in targets) / sent_pings
        rtt = (f"{sum(averages) / len(averages):.1f} ({min(averages):.1f}-{max(averages):.1f})"
               if averages else "no replies")
        success = f"{1 - errors / requests:.0%}" if requests else "-"
        took = f"{seconds / requests:.2f}" if requests else "-"
        print(f"{name:<8}{requests:>9}{errors:>7}{success:>8}{took:>7}  {rtt:<24}{lost:>5.0%}")
    for result in sent.values():
        print(f"\nflood: asked {result['requested_pps']:.0f} packets/s, sent "
              f"{result['achieved_pps']:.0f}/s for {result['seconds']} s")
    print(f"capture on {router} {interface}: {captured['captured'].get(interface, 0)} flood "
          f"packets, in results/{router}/{pcap}")

    print("\nper node:")
    for node, stats in sorted(web.stats().items()):
        counters = stats.get("clients") or stats.get("counters") or {}
        if "served_requests" in counters:
            print(f"  {node:<10} served {counters['served_requests']} requests, "
                  f"{counters['served_bytes'] / 1e6:.1f} MB")
        elif counters:
            rtts = []
            for _, by_node in phases.values():
                target = (by_node.get(node) or {}).get("targets", {}).get(args.victim) or {}
                rtts.append(f"{target['rtt_avg']:.1f}" if target.get("rtt_avg") else "-")
            print(f"  {node:<10} {counters.get('requests', 0)} requests, "
                  f"{counters.get('bytes', 0) / 1e6:.1f} MB, {counters.get('errors', 0)} failed; "
                  f"ping rtt ms before/during/after {'/'.join(rtts)}")
