"""The testbed's link poller: the queues of shaped LANs, where no daemon can see them.

A shaped LAN's bridge ports (``l<k>p<j>`` in the switch namespace, see
:mod:`seer.testbed.build`) have a tbf qdisc each: the queue toward member
j.  No node's daemon lives in the switch namespace, so this process reads
those qdiscs (rtnetlink, the same reader the daemons' qdisc poller uses)
and sends them to the controller as READINGS from source ``switch``,
labelled with the link, the port and the member the queue feeds
(``toward``); the controller counts them for that link.

It opens its netlink socket inside the switch namespace and then moves
itself into the controller's namespace to connect there (a socket stays in
the namespace it was made in, as the relay's listener does), with the
testbed's experimenter certificate.  A blocking loop in a process of its
own: one dump and one request a second.  The supervisor restarts it if it
dies; it reconnects by itself if the controller restarts.

    python -m seer.testbed.linkstats --switch-ns NS --control-ns NS
        --controller HOST:PORT --certs DIR --identity NAME --ports JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

#: Seconds between readings, and between attempts to reach the controller.
INTERVAL = 1.0


def readings(qdiscs: list[dict[str, Any]], names: dict[int, str],
             ports: dict[str, list[str]], now: float) -> list[dict[str, Any]]:
    """The READINGS of the switch ports' qdiscs: {port: [link, member node]}."""
    series = []
    for q in qdiscs:
        port = names.get(q["ifindex"])
        if port not in ports or q["kind"] in ("noqueue", ""):
            continue
        link, toward = ports[port]
        series.append([{"link": link, "interface": port, "toward": toward, "qdisc": q["kind"],
                        "handle": q["handle"]}, q["values"]])
    return [{"poller": "qdisc", "t": round(now, 3), "series": series}]


def run(args: argparse.Namespace) -> int:
    from seer.client import Connection, SeerError
    from seer.testbed.relay import enter_namespace
    from backend.node.pollers import netlink

    ports = json.loads(args.ports)
    enter_namespace(args.switch_ns)
    sock = netlink.open_socket()  # stays in the switch namespace
    enter_namespace(args.control_ns)
    print(f"linkstats: {len(ports)} switch ports of {args.switch_ns} -> {args.controller}",
          flush=True)
    connection = None
    seq = 0
    names: dict[int, str] = {}
    while True:
        started = time.monotonic()
        try:
            seq += 2
            qdiscs = netlink.dump_blocking(sock, netlink.RTM_GETQDISC, seq)
            if any(q["ifindex"] not in names for q in qdiscs):
                names = dict(netlink.dump_blocking(sock, netlink.RTM_GETLINK, seq + 1))
            now = time.time()
            if connection is None:
                connection = Connection(args.controller, args.certs, args.identity)
            connection.request({"type": "READINGS", "source": "switch", "time": round(now, 3),
                                "interval": INTERVAL,
                                "readings": readings(qdiscs, names, ports, now)}, timeout=5.0)
        except (SeerError, OSError) as e:
            print(f"linkstats: {e}; trying again", flush=True)
            if connection is not None:
                connection.close()
            connection = None
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seer.testbed.linkstats",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--switch-ns", required=True)
    parser.add_argument("--control-ns", required=True)
    parser.add_argument("--controller", required=True, help="HOST:PORT in the control namespace")
    parser.add_argument("--certs", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--ports", required=True, help='JSON {"l2p0": ["servers", "router"]}')
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
