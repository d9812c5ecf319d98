"""`seer nodes | agents | status | watch`: what the controller knows of the
experiment, printed once (or, for watch, live).  They change nothing, but
for `seer nodes --forget`, which drops a node gone for good."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from seer.cli.common import (
    EXIT_OK,
    EXIT_UNCONFIRMED,
    client_flags,
    finite_float,
    open_experiment,
)


def cmd_nodes(args: argparse.Namespace) -> int:
    with open_experiment(args) as exp:
        if args.forget:
            exp.forget(args.forget)
            print(f"forgot node {args.forget}: it is no longer targeted or named in outcomes")
        waited = None
        if args.wait is not None:
            waited = exp.wait_for_nodes(args.wait or None, args.timeout)
        table = {k: v for k, v in exp.node_table().items() if k not in ("type", "id")}
    if args.json:
        print(json.dumps(dict(table, wait=waited) if waited else table, indent=2, default=str))
    else:
        nodes = table.get("nodes") or []
        print(f"epoch {table.get('epoch')}, serial {table.get('serial')}, "
              f"{sum(1 for n in nodes if n['up'])} of {len(nodes)} node(s) up")
        for n in nodes:
            lag = n.get("lag")
            addresses = " ".join(n.get("addresses") or []) or "-"
            attrs = " ".join(f"{k}={v}" for k, v in (n.get("attributes") or {}).items())
            print(f"  {n['name']:<16} {node_state(n):<16} serial {n['serial']:<8} "
                  f"lag {lag if lag is not None else '-':<6} {addresses} {attrs}".rstrip())
            if n.get("snapshot"):
                print(f"  {'':<16} {describe_snapshot(n['snapshot'])}")
        if waited is not None:
            if waited.get("ok"):
                print(f"all {len(waited['nodes'])} awaited node(s) are up")
            else:
                print(f"not up after {args.timeout:.0f} s: {', '.join(waited['missing'])}")
    if waited is not None and not waited.get("ok"):
        return EXIT_UNCONFIRMED  # nodes that did not come up
    return EXIT_OK


def node_state(node: dict[str, Any]) -> str:
    """up, unreachable (since when), down, not reconnected, never registered."""
    state = node.get("state") or ("up" if node["up"] else "down")
    since = node.get("unreachable_since")
    if state == "unreachable" and since:
        state += " since " + time.strftime("%H:%M:%S", time.localtime(since))
    return state


def describe_snapshot(snapshot: dict[str, Any]) -> str:
    """What the last snapshot resumed on a node, and what not and why."""
    when = time.strftime("%H:%M:%S", time.localtime(snapshot["at"]))
    resumed = ", ".join(snapshot.get("resumed") or []) or "no run"
    text = f"snapshot at {when} (serial {snapshot['serial']}): resumed {resumed}"
    for skipped in snapshot.get("not_resumed") or []:
        text += f"; not {skipped['group']}: {skipped['why']}"
    return text


def cmd_agents(args: argparse.Namespace) -> int:
    with open_experiment(args) as exp:
        reply = exp.agents()
    if args.json:
        print(json.dumps({"agents": reply.get("agents"), "errors": reply.get("errors")}, indent=2))
        return EXIT_OK
    agents = reply.get("agents") or {}
    if not agents:
        print("no agents: no node has registered yet")
    for name, a in sorted(agents.items()):
        print(f"{name} -- {a.get('nice', '')} [{a.get('menu', '')}]")
        print(f"  commands: {', '.join(a.get('commands', [])) or 'none'}")
        print(f"  on: {', '.join(a.get('nodes', []))}")
        for v in a.get("variables", []):
            default = "" if v.get("default") is None else f" = {v['default']!r}"
            print(f"    {v['name']} ({v['type']}{default}): {v.get('help', '')}")
    for node, errors in (reply.get("errors") or {}).items():
        for e in errors:
            print(f"{node}: could not load {e['source']}: {e['error']}", file=sys.stderr)
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from seer.watch import watch

    with open_experiment(args) as exp:
        try:
            watch(exp, interval=args.interval, duration=args.duration, once=args.once,
                  as_json=args.json)
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    with open_experiment(args) as exp:
        status = exp.status()
    status = {k: v for k, v in status.items() if k not in ("type", "id")}
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    dg = status["datagrams"]
    print(f"controller {status['controller']} (SEER {status['version']}): epoch {status['epoch']}, "
          f"serial {status['serial']}, {status['window']} serials in the retransmit window, "
          f"{status['pending']} awaiting outcomes")
    print(f"sent {dg['messages']} message datagrams, {dg['pings']} pings, {dg['bytes']} bytes")
    up = [n for n in status["nodes"] if n["up"]]
    print(f"{len(up)} of {len(status['nodes'])} node(s) up; "
          f"largest lag {max((n['lag'] or 0 for n in up), default=0)}")
    for n in status["nodes"]:
        if not n["up"] or n.get("snapshot"):
            print(f"  {n['name']}: {node_state(n)}"
                  + (f"; {describe_snapshot(n['snapshot'])}" if n.get("snapshot") else ""))
    for name, value in sorted(status["counters"].items()):
        print(f"  {name}: {value}")
    return EXIT_OK


# -- their flags ----------------------------------------------------------------------


def _define_nodes(p: argparse.ArgumentParser) -> None:
    p.description = ("List nodes: up/down/never registered, last serial, lag, addresses, "
                     "attributes.")
    p.set_defaults(func=cmd_nodes)
    client_flags(p)
    p.add_argument("--wait", nargs="*", metavar="NODE",
                   help="first wait until these nodes (default: the required ones) are up")
    p.add_argument("--timeout", type=finite_float, default=30.0,
                   help="for --wait (default: 30 s)")
    p.add_argument("--forget", metavar="NODE",
                   help="first forget NODE, a node gone for good (it must be down): it is no "
                        "longer targeted, or named in the outcomes it misses")


def _define_agents(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=cmd_agents)
    client_flags(p)


def _define_watch(p: argparse.ArgumentParser) -> None:
    p.description = ("Watch the experiment: links (rate, drops, queue), nodes (up, serial, "
                     "lag, drops, repairs), every agent group's counters, recent commands and "
                     "reports. Redraws in place on a terminal (--json: one JSON object per "
                     "refresh); Ctrl-C ends it.")
    p.set_defaults(func=cmd_watch)
    p.add_argument("--interval", type=finite_float, default=1.0,
                   help="seconds between refreshes")
    p.add_argument("--duration", type=finite_float, help="stop after this many seconds")
    p.add_argument("--once", action="store_true", help="print one view and exit")
    client_flags(p)


def _define_status(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=cmd_status)
    client_flags(p)


_DEFINE = {"nodes": _define_nodes, "agents": _define_agents, "watch": _define_watch,
           "status": _define_status}


def define(name: str, parser: argparse.ArgumentParser) -> None:
    """Give the subcommand ``name``'s parser its description, flags and handler."""
    _DEFINE[name](parser)
