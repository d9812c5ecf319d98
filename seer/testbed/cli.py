"""`seer testbed up | down | status | inspect | check | exec | loss | restart | stop | graph`.

A plain blocking program: every command does its work and exits.  A
command that names no testbed uses ``SEER_TESTBED``, else the only testbed
there is, as the client commands do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
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
    if not 0 <= fraction < 1:  # also refuses nan
        raise TestbedError(f"loss {text} must be from 0% to 99.9%")
    return fraction


def _unknown(name: str, names: list[str], where: str = "") -> TestbedError:
    others = f"testbeds here: {', '.join(names)}" if names else "no testbed is up"
    return TestbedError(f"no testbed called {name!r}{where} ({others})")


def _one(name: str | None) -> str:
    """The testbed a command is about: named, else $SEER_TESTBED, else the only
    one whose state is in this state folder (as the client commands choose)."""
    from seer.testbed import runner, state

    names = runner.known()
    if name:
        if name not in names:
            raise _unknown(name, names)
        return name
    chosen = os.environ.get("SEER_TESTBED")
    if chosen:
        if chosen not in names:
            raise _unknown(chosen, names, " (named by SEER_TESTBED)")
        return chosen
    here = state.known()
    if len(here) == 1:
        return here[0]
    if not here:
        raise TestbedError("no testbed is up; start one with `seer testbed up TOPOLOGY`"
                           + _elsewhere(names))
    raise TestbedError(f"several testbeds exist ({', '.join(here)}); name one "
                       "(--testbed NAME, or SEER_TESTBED=NAME)")


def _elsewhere(names: list[str]) -> str:
    """A note on testbeds that have namespaces here but no state in this state folder."""
    from seer.testbed import state

    others = sorted(set(names) - set(state.known()))
    if not others:
        return ""
    return (f" (namespaces of {', '.join(others)} exist, with no state in {state.root()}: "
            "another user's testbed, or remains; name one to act on it)")


def cmd_up(args: argparse.Namespace) -> int:
    from seer.testbed import build, runner
    from seer.testbed.netns import can_build
    from seer.testbed.topology import TopologyError, parse_topology

    try:
        text = Path(args.topology).read_text()
    except OSError as e:
        raise TestbedError(f"cannot read topology {args.topology}: {e.strerror}") from None
    try:
        topology = parse_topology(text, args.topology, args.name)
    except TopologyError as e:
        raise TestbedError(str(e)) from None
    control_loss = _parse_percent(args.control_loss)
    why = can_build()
    if why:
        raise TestbedError(why)
    for source, network in topology.unreachable:
        print(f"warning: {source} has no route to {network} (no router in between)",
              file=sys.stderr)
    print(f"testbed {topology.name}: {topology.summary()}")
    show = _progress()
    try:
        testbed = runner.up(topology, control_loss=control_loss, timeout=args.timeout,
                            topology_text=text, progress=show)
    except runner.NameTaken as e:
        print(file=sys.stderr)
        raise TestbedError(str(e)) from None
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

    if args.all:
        # Only those whose state is here: namespaces without it may be another
        # user's (another SEER_TESTBED_DIR); they are named, not touched.
        names = state.known()
        if not names:
            print("no testbed to take down")
        note = _elsewhere(runner.known())
        if note:
            print(f"left alone{note}")
    else:
        names = [_one(args.name)]
    for name in names:
        done = runner.down(name)
        print(f"testbed {name} is down: {done['processes']} processes stopped, "
              f"{done['namespaces']} namespaces removed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from seer.testbed import report, runner, state

    names = [_one(args.name)] if args.name else state.known()
    statuses = [report.status(name) for name in names]
    if args.json:
        print(json.dumps({"testbeds": statuses}, indent=2))
    else:
        print("\n\n".join(report.render_status(s) for s in statuses) if statuses
              else "no testbed is up")
        if not args.name and _elsewhere(runner.known()):
            print(_elsewhere(runner.known()).strip(" ()"))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from seer.testbed import report

    found = report.inspect(_one(args.testbed))
    print(json.dumps(found, indent=2) if args.json else report.render_inspect(found))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from seer.testbed import build, check, state

    name = _one(args.testbed)
    topology = (state.read(name) or {}).get("topology")
    if not topology or not build.testbed_namespaces(name):
        raise TestbedError(f"testbed {name} is not up; nothing to check")
    pairs = check.expected(topology)
    results = check.ping_all(lambda node: build.node_ns(name, node), pairs)
    line, failures = check.summary(pairs, results)
    if args.json:
        print(json.dumps({"testbed": name, "pairs": [
            {"from": a, "to": b, "address": address, "expected": address is not None,
             "reached": results.get((a, b), False)} for (a, b), address in pairs.items()],
            "failed": len(failures)}, indent=2))
    else:
        print(f"testbed {name}: every node pings every other "
              "(row pings column: . answered, X did not, - no path in the topology)")
        print(check.matrix(list(topology["nodes"]), pairs, results))
        print(line)
        for failure in failures:
            print(f"  {failure}")
    return 1 if failures else 0


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

    fraction = _parse_percent(args.percent)
    name = _one(args.testbed)
    if not build.testbed_namespaces(name):
        raise TestbedError(f"testbed {name} is not up")
    build.set_control_loss(name, fraction)
    testbed = state.read(name)
    if testbed is not None:
        testbed["control_loss"] = fraction
        state.write(name, testbed)
    print(f"testbed {name}: {fraction:.1%} of control-network multicast is dropped")
    return 0


def _supervised(args: argparse.Namespace, op: str) -> int:
    from seer.testbed import control, state

    name = _one(args.testbed)
    try:
        reply = control.request(state.directory(name), op, args.process, timeout=30.0)
    except control.ControlError as e:
        raise TestbedError(f"testbed {name}: cannot {op} {args.process}: {e}") from None
    p = reply["process"]
    if op == "restart":
        print(f"testbed {name}: {args.process} restarted (pid {p.get('pid') or '-'})")
    else:
        print(f"testbed {name}: {args.process} stopped; it stays stopped until "
              f"`seer testbed restart {args.process}`")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    return _supervised(args, "restart")


def cmd_stop(args: argparse.Namespace) -> int:
    return _supervised(args, "stop")


def cmd_graph(args: argparse.Namespace) -> int:
    from seer.testbed import graph, state
    from seer.testbed.topology import TopologyError, describe, load_topology

    source = Path(args.topology)
    if source.is_file():
        try:
            description = describe(load_topology(source))
        except TopologyError as e:
            raise TestbedError(str(e)) from None
    else:
        description = (state.read(args.topology) or {}).get("topology")
        if description is None:
            raise TestbedError(f"{args.topology} is neither a topology file nor a testbed that is "
                               "up; give a file such as examples/topologies/demo.toml")
    formats = ("dot", "mmd") if args.text_only else graph.FORMATS
    if not args.text_only and graph.graphviz_missing():
        raise TestbedError(graph.graphviz_missing())
    prefix = Path(args.output or f"topology-{description['name']}")
    try:
        written = graph.write(description, prefix, formats)
    except graph.GraphError as e:
        raise TestbedError(str(e)) from None
    print(f"topology {description['name']}: " + ", ".join(str(p) for p in written))
    return 0


def define(name: str, parser: argparse.ArgumentParser) -> None:
    """Give `seer testbed` (made by seer.cli.entry, which lists it) its actions."""
    parser.description = (
        "A DETER-style experiment on this machine: every node a network namespace, "
        "LANs and links as veth pairs and bridges, a control network, the "
        "controller and a daemon per node, kept running by a supervisor. "
        "Needs root; touches nothing of the host's.")
    actions = parser.add_subparsers(dest="testbed_command", metavar="ACTION")
    actions.required = True
    which = "testbed (default: $SEER_TESTBED, else the only one)"

    p = actions.add_parser("up", help="build a testbed from a topology and start SEER on it",
                           description="Build the topology (TOML; see examples/topologies), start "
                                       "the controller and a daemon per node under the testbed's "
                                       "supervisor, wait until every node registered.")
    p.add_argument("topology", help="topology file, e.g. examples/topologies/demo.toml")
    p.add_argument("--name", help="testbed name, at most 15 characters (default: the file's "
                                  "`name`)")
    p.add_argument("--control-loss", default="0%", metavar="PERCENT",
                   help="drop this share of control-network multicast (nftables), e.g. 20%%")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for every node to register (default: 120)")
    p.set_defaults(func=cmd_up)

    p = actions.add_parser("down", help="stop the testbed's processes and remove its namespaces",
                           description="Stop the processes the testbed started (and only those) "
                                       "and remove its namespaces; works after a crash.")
    p.add_argument("name", nargs="?", help=which)
    p.add_argument("--all", action="store_true",
                   help="every testbed whose state is in this state folder")
    p.set_defaults(func=cmd_down)

    p = actions.add_parser("status", help="testbeds, their processes and nodes")
    p.add_argument("name", nargs="?", help="one testbed (default: every one whose state is here)")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_status)

    p = actions.add_parser("inspect", help="nodes, addresses, links, namespaces and processes",
                           description="Everything about one testbed: each node's namespace, "
                                       "addresses, routes and process; the LANs and links; the "
                                       "namespaces; every process with its PID.")
    p.add_argument("--testbed", help=which)
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_inspect)

    p = actions.add_parser("check", help="ping every pair of nodes; print the matrix",
                           description="Every node pings every other node it should reach "
                                       "(Mininet's pingall); exit 1 if a pair cannot.")
    p.add_argument("--testbed", help=which)
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_check)

    p = actions.add_parser("exec", help="run a command in a node's namespace",
                           description="Run CMD in NODE's network namespace (also `controller` "
                                       "and `switch`), e.g. seer testbed exec client1 -- ping "
                                       "198.18.10.2")
    p.add_argument("node")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.add_argument("--testbed", help=which)
    p.set_defaults(func=cmd_exec)

    p = actions.add_parser("loss", help="set control-network loss",
                           description="Drop this share of the control network's multicast "
                                       "(0% to stop), for reliability experiments.")
    p.add_argument("percent", help="e.g. 5%%")
    p.add_argument("--testbed", help=which)
    p.set_defaults(func=cmd_loss)

    for action, func, text in (
            ("restart", cmd_restart, "restart a node's daemon (or the controller, or the relay) "
                                     "now; one that was stopped starts again"),
            ("stop", cmd_stop, "stop a node's daemon (or the controller, or the relay) and keep "
                               "it stopped until `seer testbed restart`")):
        p = actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("process", metavar="NODE", help="node name, `controller` or `relay`")
        p.add_argument("--testbed", help=which)
        p.set_defaults(func=func)

    p = actions.add_parser("graph", help="draw a topology (PNG, SVG, dot, Mermaid)",
                           description="Draw a topology -- nodes, LANs, links with their "
                                       "bandwidth, addresses -- as PNG and SVG (Graphviz) and "
                                       "write its dot and Mermaid text beside them.")
    p.add_argument("topology", metavar="FILE-or-NAME",
                   help="a topology file, or the name of a testbed that is up")
    p.add_argument("--output", metavar="PREFIX",
                   help="files PREFIX.png .svg .dot .mmd (default: topology-NAME)")
    p.add_argument("--text-only", action="store_true",
                   help="only the dot and Mermaid text (no Graphviz needed)")
    p.set_defaults(func=cmd_graph)
