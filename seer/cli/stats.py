"""`seer stats`: the experiment's current rates per link, node and agent group;
`seer stats record FILE`: every interval's aggregate and every command, into CSV.

    seer stats                 one table (--json: the controller's aggregate)
    seer stats --watch         redrawn every interval, from a subscription
    seer stats --history 60    the last minute too (with --json)
    seer stats record run.csv  until Ctrl-C or --duration; the command log
                               goes to run-commands.csv beside it
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from seer.cli.common import (
    EXIT_OK,
    UsageError,
    client_flags,
    finite_float,
    open_experiment,
)


def cmd_stats(args: argparse.Namespace) -> int:
    what = list(args.what)
    if what and what[0] == "record":
        if len(what) != 2:
            raise UsageError("seer stats record needs one FILE, e.g. seer stats record run.csv")
        return _record(args, what[1])
    if what:
        raise UsageError(f"seer stats takes no {' '.join(what)!r}; did you mean "
                         "`seer stats record FILE`?")
    if args.history < 0:
        raise UsageError("--history must be 0 or more seconds")
    from seer.statsview import render

    with open_experiment(args) as exp:
        if not args.watch:
            reply = exp.stats(history=args.history, commands=args.commands)
            if args.json:
                print(json.dumps(reply, indent=2))
            else:
                print("\n".join(render(reply.get("aggregate"))))
            return EXIT_OK
        reply = exp.subscribe_stats()
        aggregate = reply.get("aggregate")
        tty = sys.stdout.isatty()
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while True:
                if args.json:
                    print(json.dumps(aggregate), flush=True)
                else:
                    screen = "\n".join(render(aggregate))
                    sys.stdout.write(("\033[H\033[2J" if tty else "") + screen + "\n"
                                     + ("" if tty else "\n"))
                    sys.stdout.flush()
                if deadline is not None and time.monotonic() >= deadline:
                    return EXIT_OK
                for frame in exp.events(timeout=2 * (reply.get("interval") or 1.0)):
                    if frame.type == "AGGREGATE":
                        aggregate = frame.get("aggregate")
                        break
        except KeyboardInterrupt:
            return EXIT_OK


def _record(args: argparse.Namespace, path: str) -> int:
    from seer.client.stats import commands_path, record

    with open_experiment(args) as exp:
        recorder = record(exp, path, args.duration)
    print(f"recorded {recorder.aggregates} intervals into {path} and {recorder.entries} "
          f"commands into {commands_path(recorder.path)}", file=sys.stderr)
    return EXIT_OK


def define(name: str, p: argparse.ArgumentParser) -> None:
    """Give `seer stats`'s parser its description, flags and handler."""
    p.description = ("Show the experiment's rates per link, node and agent group, from the "
                     "nodes' pollers (every second by default); `seer stats record FILE` "
                     "writes every interval's numbers and every command to CSV files.")
    p.set_defaults(func=cmd_stats)
    p.add_argument("what", nargs="*", metavar="record FILE",
                   help="record into FILE (and FILE's -commands.csv) instead of showing")
    p.add_argument("--watch", "-w", action="store_true", help="redraw every interval")
    p.add_argument("--duration", type=finite_float,
                   help="with --watch or record: stop after this long")
    p.add_argument("--history", type=finite_float, default=0.0, metavar="SECONDS",
                   help="also the last SECONDS of aggregates (with --json)")
    p.add_argument("--commands", type=int, default=0, metavar="N",
                   help="also the last N commands (with --json)")
    client_flags(p)
