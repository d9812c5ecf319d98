"""`seer set | start | stop | command | put | get`: one message to the
experiment's nodes, then every targeted node's outcome, one line each.

The exit code says how it went: 0 every node applied it (or was skipped as
not in the group's NODES), 1 a node failed or did not confirm.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from seer.cli.common import (
    UsageError,
    client_flags,
    finite_float,
    message_flags,
    open_experiment,
    outcome_exit_code,
)
from seer.protocol.wire import non_finite


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """VAR=VALUE and VAR@NODE=VALUE pairs into a SET's vars.

    A value that reads as JSON (5, 0.5, true, ["a","b"]) is taken as such;
    anything else is a string, so think=minmax(0.1,0.9) needs no quoting.
    VAR@NODE gives that node its own value (SEER's per-node variables).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r} is not VAR=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        bad = non_finite(value, key)
        if bad is not None:
            raise ValueError(f"{item!r}: {bad}, not a finite number; SEER carries only "
                             "finite numbers (JSON has no NaN or Infinity)")
        name, at, node = key.partition("@")
        if at:
            table = out.setdefault(name, {})
            if not isinstance(table, dict):
                table = out[name] = {"*": table}
            table[node] = value
        elif isinstance(out.get(name), dict):
            out[name]["*"] = value
        else:
            out[name] = value
    return out


def print_result(result: Any, as_json: bool) -> int:
    """Every targeted node's outcome, and the exit code they make."""
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"{result.what}: job {result.job}, {len(result.nodes)} node(s)")
        width = max((len(n) for n in result.nodes), default=4)
        for node in result.nodes:
            outcome = result.outcomes.get(node)
            nested = outcome is not None and not outcome.error and _is_nested(outcome.result)
            text = outcome.status if nested else \
                (outcome.describe() if outcome else "unconfirmed: no answer")
            print(f"  {node:<{width}}  {text}")
            if nested:
                for row in result_rows(outcome.result):
                    print(f"  {'':<{width}}    {row}")
        counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts().items()))
        print(counts or "no outcomes")
    return outcome_exit_code(result)


def _is_nested(value: Any) -> bool:
    return isinstance(value, dict) and any(isinstance(v, (dict, list)) for v in value.values())


def result_rows(value: dict[str, Any], prefix: str = "") -> list[str]:
    """A nested result (PING's STATS: counters, then one table per target) as
    readable rows -- ``targets.server1: sent=5 received=5 rtt_avg=0.41`` --
    instead of one line of JSON cut off at the terminal's edge."""
    scalars = {k: v for k, v in value.items() if not isinstance(v, dict)}
    rows = []
    if scalars:
        shown = " ".join(f"{k}={json.dumps(v, separators=(',', ':')) if isinstance(v, list) else v}"
                         for k, v in scalars.items())
        rows.append(f"{prefix}: {shown}" if prefix else shown)
    for key, sub in value.items():
        if isinstance(sub, dict):
            rows += result_rows(sub, f"{prefix}.{key}" if prefix else key) if sub else \
                [f"{prefix}.{key}: -" if prefix else f"{key}: -"]
    return rows


def cmd_set(args: argparse.Namespace) -> int:
    try:
        variables = parse_assignments(args.assignments)
    except ValueError as e:
        raise UsageError(str(e)) from None
    with open_experiment(args) as exp:
        result = exp.set(args.agent, args.group, variables, target=args.target,
                         timeout=args.timeout, at=args.at, after=args.after, check=False)
    return print_result(result, args.json)


def _run_command(args: argparse.Namespace, command: str, arguments: dict[str, Any]) -> int:
    with open_experiment(args) as exp:
        result = exp.command(args.agent, args.group, command, arguments, target=args.target,
                             timeout=args.timeout, at=args.at, after=args.after, check=False)
    return print_result(result, args.json)


def cmd_start(args: argparse.Namespace) -> int:
    return _run_command(args, "START", {})


def cmd_stop(args: argparse.Namespace) -> int:
    return _run_command(args, "STOP", {})


def cmd_command(args: argparse.Namespace) -> int:
    try:
        arguments = parse_assignments(args.arguments)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return _run_command(args, args.command.upper(), arguments)


def cmd_put(args: argparse.Namespace) -> int:
    try:
        mode = int(args.mode, 8)
    except ValueError:
        raise UsageError(f"--mode {args.mode!r} is not an octal permission such as 644") from None
    if not Path(args.file).is_file():
        what = "is a folder, not a file" if Path(args.file).is_dir() else "does not exist"
        raise UsageError(f"{args.file} {what}; give the file to send (nothing was sent)")
    with open_experiment(args) as exp:
        result = exp.put(args.file, args.name, kind="agent" if args.agent else "file", mode=mode,
                         target=args.target, timeout=args.timeout, check=False)
    return print_result(result, args.json)


def cmd_get(args: argparse.Namespace) -> int:
    with open_experiment(args) as exp:
        result = exp.get(args.name, into=args.into, target=args.target, timeout=args.timeout,
                         check=False)
    return print_result(result, args.json)


# -- their flags ----------------------------------------------------------------------


def _define_set(p: argparse.ArgumentParser) -> None:
    p.description = ("Set variables of an agent group: VAR=VALUE, or VAR@NODE=VALUE for one "
                     "node's own value. Values that read as JSON are JSON; others are strings.")
    p.set_defaults(func=cmd_set)
    p.add_argument("agent", help="agent type, e.g. HTTP")
    p.add_argument("group", help="agent group name, e.g. web1")
    p.add_argument("assignments", nargs="+", metavar="VAR=VALUE")
    message_flags(p)
    client_flags(p)


def _define_run_state(func: Any) -> Any:
    def define(p: argparse.ArgumentParser) -> None:
        p.set_defaults(func=func)
        p.add_argument("agent", help="agent type")
        p.add_argument("group", help="agent group name")
        message_flags(p)
        client_flags(p)

    return define


def _define_put(p: argparse.ArgumentParser) -> None:
    p.description = ("Send a file to the targeted nodes (into their files/ folder), or with "
                     "--agent an agent module, which every node loads at once: no restart "
                     "needed.")
    p.set_defaults(func=cmd_put)
    p.add_argument("file", help="the local file")
    p.add_argument("--as", dest="name", metavar="NAME", help="name on the nodes (default: the file's)")
    p.add_argument("--agent", action="store_true", help="it is an agent module: load it")
    p.add_argument("--mode", default="644", help="permissions on the nodes, octal (default: 644)")
    p.add_argument("--target", "-t", metavar="SPEC", help="nodes (default: all)")
    p.add_argument("--timeout", type=finite_float, metavar="SECONDS", help="for the outcomes")
    client_flags(p)


def _define_get(p: argparse.ArgumentParser) -> None:
    p.description = ("Bring NAME (relative to each node's work folder, e.g. "
                     "TCPDUMP-cap/capture.pcap) back from the targeted nodes into "
                     "INTO/NODE/NAME.")
    p.set_defaults(func=cmd_get)
    p.add_argument("name", help="the file on the nodes")
    p.add_argument("--into", default="results", help="local folder (default: results)")
    p.add_argument("--target", "-t", metavar="SPEC", help="nodes (default: all)")
    p.add_argument("--timeout", type=finite_float, metavar="SECONDS", help="for the outcomes")
    client_flags(p)


def _define_command(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=cmd_command)
    p.add_argument("agent", help="agent type")
    p.add_argument("group", help="agent group name")
    p.add_argument("command", help="command name, e.g. START")
    p.add_argument("arguments", nargs="*", metavar="ARG=VALUE")
    message_flags(p)
    client_flags(p)


_DEFINE = {"set": _define_set, "start": _define_run_state(cmd_start),
           "stop": _define_run_state(cmd_stop), "put": _define_put, "get": _define_get,
           "command": _define_command}


def define(name: str, parser: argparse.ArgumentParser) -> None:
    """Give the subcommand ``name``'s parser its description, flags and handler."""
    _DEFINE[name](parser)
