"""A TCP relay from 127.0.0.1 in the host's namespace to the controller.

The controller of a testbed lives in the testbed's controller namespace; the
shell that ran `seer testbed up` lives in the host's.  This relay opens its
listening socket on 127.0.0.1 first, then moves itself into the controller
namespace (setns), so every connection it makes from then on leaves from
there: ``seer nodes`` in the host shell reaches the controller without any
interface, route or firewall rule being added to the host.  TLS passes
through untouched, end to end.

    python -m seer.testbed.relay --listen PORT --netns NAME --to HOST:PORT
        [--forward PORT=HOST:PORT ...]

``--forward`` adds more such pairs: the controller's HTTP port (``/metrics``)
goes through the same relay.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

CLONE_NEWNET = 0x40000000


def enter_namespace(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns into {name}: {os.strerror(error)}")
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seer.testbed.relay", description=__doc__)
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--netns", required=True, help="namespace to connect from")
    parser.add_argument("--to", required=True, help="HOST:PORT to connect to, in that namespace")
    parser.add_argument("--forward", action="append", default=[], metavar="PORT=HOST:PORT",
                        help="another port on 127.0.0.1 and where it goes (repeatable)")
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    forwards = []
    for item in args.forward:
        listen, sep, to = item.partition("=")
        to_host, _, to_port = to.rpartition(":")
        if not sep or not listen.isdigit() or not to_host or not to_port.isdigit():
            parser.error(f"--forward {item!r}: give PORT=HOST:PORT")
        forwards.append((int(listen), to_host, int(to_port)))

    from twisted.internet import reactor
    from twisted.protocols.portforward import ProxyFactory

    reactor.listenTCP(args.listen, ProxyFactory(host, int(port)), interface="127.0.0.1")
    for listen, to_host, to_port in forwards:
        reactor.listenTCP(listen, ProxyFactory(to_host, to_port), interface="127.0.0.1")
    enter_namespace(args.netns)  # after listening: the listener stays in the host's namespace
    print(f"relay 127.0.0.1:{args.listen} -> {host}:{port} in {args.netns}", flush=True)
    for listen, to_host, to_port in forwards:
        print(f"relay 127.0.0.1:{listen} -> {to_host}:{to_port} in {args.netns}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
