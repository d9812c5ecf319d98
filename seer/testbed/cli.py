"""`seer testbed up | down | status | exec | loss | list`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

# The testbed modules are imported inside the commands: building this parser
# (seer.cli.build_parser() builds every command's) must not load the testbed
# builder and netaddr into whatever process asked for it.


class TestbedError(Exception):
    """A testbed command that cannot be carried out; nothing was changed."""


def _progress(stream: Any = sys.stdout):
    tty = stream.isatty()
    last = [0.0, ""]

    def show(text: str) -> None:
        if tty:
            stream.write(f"\r\033[K{text}")
            stream.flush()
        elif text.split(" (")[0] != last[1].split(" (")[0] or time.monotonic() - last[0] > 2:
            stream.write(text + "\n")
            stream.flush()
            last[0] = time.monotonic()
        last[1] = text

    return show


def _parse_percent(text: str) -> float:
    value = text.rstrip("%")
    try:
        fraction = float(value) / 100
    except ValueError:
        raise TestbedError(f"{text!r} is not a percentage such as 20%") from None
    if not 0 <= fraction < 1:
        raise TestbedError(f"loss {text} must be from 0% to 99.9%")
    return fraction


def _one(name: str | None) -> str:
    from seer.testbed import state

    if name:
        return name
    names = sorted(set(state.known()) | {n.split("-")[1] for n in _all_namespaces()})
    if len(names) == 1:
        return names[0]
    if not names:
        raise TestbedError("no testbed is up; start one with `seer testbed up TOPOLOGY`")
    raise TestbedError(f"several testbeds exist ({', '.join(names)}); name one")


def _all_namespaces() -> list[str]:
    from seer.testbed.netns import PREFIX, namespaces

    return [n for n in namespaces() if n.startswith(PREFIX) and not n.startswith(f"{PREFIX}probe")]


def cmd_up(args: argparse.Namespace) -> int:
    from seer.testbed import build, runner
    from seer.testbed.netns import can_build
    from seer.testbed.topology import TopologyError, load_topology

    why = can_build()
    if why:
        raise TestbedError(why)
    try:
        topology = load_topology(args.topology, args.name)
    except TopologyError as e:
        raise TestbedError(str(e)) from None
    for source, network in topology.unreachable:
        print(f"warning: {source} has no route to {network} (no router in between)",
              file=sys.stderr)
    print(f"testbed {topology.name}: {topology.summary()}")
    show = _progress()
    try:
        testbed = runner.up(topology, control_loss=_parse_percent(args.control_loss),
                            timeout=args.timeout, progress=show)
    except (runner.UpError, build.BuildError) as e:
        print(file=sys.stderr)
        raise TestbedError(f"{e}\n(everything it made was taken down again)") from None
    except KeyboardInterrupt:
        print("\ninterrupted: the testbed was taken down again", file=sys.stderr)
        return 130
    print()
    print(f"testbed {testbed['name']} is up: {len(testbed['nodes'])} nodes registered in "
          f"{testbed['registered_in']} s")
    print(f"controller: {testbed['client']['controller']} (relay to {testbed['control']}); "
          f"this shell's `seer` commands use it")
    print(f"logs: {testbed['folder']}/logs   down: seer testbed down {testbed['name']}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from seer.testbed import runner, state

    names = sorted(set(state.known()) | {n[len('seer-'):].split('-')[0] for n in _all_namespaces()}) \
        if args.all else [_one(args.name)]
    for name in names:
        done = runner.down(name)
        print(f"testbed {name} is down: {done['processes']} processes stopped, "
              f"{done['namespaces']} namespaces removed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from seer.testbed import build, state

    names = [args.name] if args.name else state.known()
    if not names:
        print("no testbed is up")
        return 0
    for name in names:
        testbed = state.read(name) or {}
        namespaces = build.testbed_namespaces(name)
        processes = build.processes_in(name)
        print(f"testbed {name}: {'up' if testbed.get('up') else 'not up'}, "
              f"{len(namespaces)} namespaces, {len(processes)} processes"
              + (f", control loss {testbed['control_loss']:.0%}" if testbed.get("control_loss") else ""))
        if testbed.get("up"):
            from seer.client import Experiment, SeerError

            client = testbed["client"]
            try:
                with Experiment(client["controller"], client["certs"], client["identity"]) as exp:
                    table = exp.node_table()
            except SeerError as e:
                print(f"  controller not answering: {e}")
                continue
            for node in table["nodes"]:
                addresses = " ".join(testbed["addresses"].get(node["name"], []))
                print(f"  {node['name']:<12} {'up' if node['up'] else 'DOWN':<5} "
                      f"serial {node['serial']:<6} {addresses}")
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    from seer.testbed import build
    from seer.testbed.netns import in_namespace

    name = _one(args.testbed)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise TestbedError("give a command after --, e.g. seer testbed exec client1 -- ip addr")
    special = {"controller": build.controller_ns(name), "switch": build.switch_ns(name)}
    ns = special.get(args.node, build.node_ns(name, args.node))
    if ns not in build.testbed_namespaces(name):
        raise TestbedError(f"testbed {name} has no node {args.node!r}")
    argv = in_namespace(ns, command)
    os.execvp(argv[0], argv)
    return 127  # not reached


def cmd_loss(args: argparse.Namespace) -> int:
    from seer.testbed import build, state

    name = _one(args.testbed)
    if not build.testbed_namespaces(name):
        raise TestbedError(f"testbed {name} is not up")
    fraction = _parse_percent(args.percent)
    build.set_control_loss(name, fraction)
    testbed = state.read(name)
    if testbed is not None:
        testbed["control_loss"] = fraction
        state.write(name, testbed)
    print(f"testbed {name}: {fraction:.1%} of control-network multicast is dropped")
    return 0


def define(name: str, parser: argparse.ArgumentParser) -> None:
    """Give `seer testbed` (made by seer.cli.entry, which lists it) its actions."""
    parser.description = (
        "A DETER-style experiment on this machine: every node a network namespace, "
        "LANs and links as veth pairs and bridges, a control network, the "
        "controller and a daemon per node. Needs root; touches nothing of the host's.")
    actions = parser.add_subparsers(dest="testbed_command", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("up", help="build a testbed from a topology and start SEER on it",
                           description="Build the topology (TOML; see examples/topologies), start "
                                       "the controller and a daemon per node, wait until every "
                                       "node registered.")
    p.add_argument("topology", help="topology file, e.g. examples/topologies/demo.toml")
    p.add_argument("--name", help="testbed name (default: the file's `name`)")
    p.add_argument("--control-loss", default="0%", metavar="PERCENT",
                   help="drop this share of control-network multicast (nftables), e.g. 20%%")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for every node to register (default: 120)")
    p.set_defaults(func=cmd_up)

    p = actions.add_parser("down", help="stop everything and remove every namespace",
                           description="Stop the testbed's processes and remove its namespaces; "
                                       "works after a crash and twice in a row.")
    p.add_argument("name", nargs="?", help="testbed (default: the only one)")
    p.add_argument("--all", action="store_true", help="every testbed")
    p.set_defaults(func=cmd_down)

    p = actions.add_parser("status", help="testbeds, their processes and nodes")
    p.add_argument("name", nargs="?", help="one testbed (default: all)")
    p.set_defaults(func=cmd_status)

    p = actions.add_parser("exec", help="run a command in a node's namespace",
                           description="Run CMD in NODE's network namespace (also `controller` "
                                       "and `switch`), e.g. seer testbed exec client1 -- ping "
                                       "198.18.10.2")
    p.add_argument("node")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.add_argument("--testbed", help="testbed (default: the only one)")
    p.set_defaults(func=cmd_exec)

    p = actions.add_parser("loss", help="set control-network loss",
                           description="Drop this share of the control network's multicast "
                                       "(0%% to stop), for reliability experiments.")
    p.add_argument("percent", help="e.g. 5%%")
    p.add_argument("--testbed", help="testbed (default: the only one)")
    p.set_defaults(func=cmd_loss)
