"""A CBR rate sweep through a shaped link: where does it saturate?

    seer run examples/cbr_sweep.py [--link router:eth3] [--bandwidth 10mbit]
                                   [--rates 2,5,8,10,12,15] [--seconds 5]

LINK shapes the link, then one CBR flow at each rate crosses it, one after
the other; the sinks report what arrived.  The table shows requested vs
received rate and loss: received follows requested up to the bandwidth and
stays there, loss rising beyond it.
"""

from __future__ import annotations

import argparse

from seer.client import Experiment
from seer.protocol.vartypes import parse_rate

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--link", default="router:eth3", help="NODE:INTERFACE to shape")
parser.add_argument("--bandwidth", default="10mbit")
parser.add_argument("--sender", default="client1")
parser.add_argument("--sink", default="server1")
parser.add_argument("--rates", default="2,5,8,10,12,15", help="Mbit/s, comma separated")
parser.add_argument("--seconds", type=float, default=5.0, help="seconds per rate")
args = parser.parse_args()
node, interface = args.link.split(":")
bandwidth = parse_rate(args.bandwidth)

with Experiment() as exp:
    link = exp.agent("LINK", "sweep")
    link.set(interface=interface, bandwidth=args.bandwidth)
    link.start(target=node)
    print(f"{node} {interface} shaped to {bandwidth / 1e6:g} Mbit/s; {args.sender} -> {args.sink}")
    print(f"{'requested':>10}{'sent':>10}{'received':>10}{'loss':>8}{'jitter ms':>11}  (Mbit/s)")
    rows = []
    for i, rate in enumerate(float(r) for r in args.rates.split(",")):
        cbr = exp.agent("CBR", f"sweep{i}")
        cbr.set(senders=args.sender, sinks=args.sink, rate=rate * 1e6, size=1200,
                duration=args.seconds, idle=1.0, port=5100 + i)
        cbr.start(target=f"{args.sender},{args.sink}")
        exp.wait_until(lambda c=cbr: c.stats(target=args.sink).get(args.sink, {}).get("cbr_received"),
                       timeout=args.seconds + 15, what=f"the sink's report at {rate} Mbit/s")
        sent = cbr.stats(target=args.sender)[args.sender]["cbr_sent"]
        got = cbr.stats(target=args.sink)[args.sink]["cbr_received"]
        cbr.stop(target=f"{args.sender},{args.sink}")
        rows.append((rate, got["received_bps"] / 1e6))
        print(f"{rate:>10.1f}{sent['achieved_bps'] / 1e6:>10.2f}{got['received_bps'] / 1e6:>10.2f}"
              f"{got['loss']:>8.1%}{got['jitter_ms']:>11.3f}")
    link.stop(target=node)
    ceiling = max(received for _, received in rows)
    print(f"most received: {ceiling:.2f} Mbit/s ({ceiling / (bandwidth / 1e6):.0%} of the shaped "
          f"{bandwidth / 1e6:g} Mbit/s)")
