"""`seer certs init`: the experiment's CA and the certificates it issues
(controller, nodes, experimenters), written into one folder."""

from __future__ import annotations

import argparse

from seer.cli.common import EXIT_OK, EXIT_REFUSED


def cmd_certs_init(args: argparse.Namespace) -> int:
    from seer.config import read_nodefile
    from seer.protocol import certs

    nodes = list(args.nodes or [])
    nodes = [n for item in nodes for n in item.replace(",", " ").split()]
    if args.nodefile:
        nodes += read_nodefile(args.nodefile)
    if args.count:
        nodes += [f"{args.prefix}{i}" for i in range(1, args.count + 1)]
    experimenters = [n for item in (args.experimenter or ["experimenter"])
                     for n in item.replace(",", " ").split()]
    directory = certs.init(args.dir, nodes, experimenters, args.experiment,
                           args.controller_address or ["127.0.0.1"], args.force)
    print(f"certificates in {directory.root}: CA, controller, {len(nodes)} node(s), "
          f"experimenter(s) {', '.join(experimenters)}")
    return EXIT_OK


def define(name: str, certs: argparse.ArgumentParser) -> None:
    """Give `seer certs` its actions (init) and their flags."""
    certs.set_defaults(func=lambda a: EXIT_REFUSED)
    certs_sub = certs.add_subparsers(dest="certs_command", metavar="ACTION")
    certs_sub.required = True
    p = certs_sub.add_parser(
        "init", help="create the CA and certificates",
        description="Create the experiment's CA (kept if it exists, unless --force) and "
                    "certificates for the controller, the nodes and the experimenters. "
                    "Keys are written with mode 0600.")
    p.set_defaults(func=cmd_certs_init)
    p.add_argument("--dir", default="certs", help="folder to write to (default: certs)")
    p.add_argument("--nodes", action="append", metavar="N1,N2", help="node names")
    p.add_argument("--nodefile", help="file of node names, one per line")
    p.add_argument("--count", type=int, default=0, help="also make PREFIX1..PREFIXN nodes")
    p.add_argument("--prefix", default="node", help="prefix for --count (default: node)")
    p.add_argument("--experimenter", action="append", metavar="NAME",
                   help="experimenter certificate(s) (default: experimenter)")
    p.add_argument("--experiment", default="seer", help="experiment name in the certificates")
    p.add_argument("--controller-address", action="append", metavar="IP",
                   help="IP address(es) for the controller certificate (default: 127.0.0.1)")
    p.add_argument("--force", action="store_true", help="replace an existing CA")
