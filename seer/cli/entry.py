"""`seer`'s entry point: the parser assembled from the command families,
main(), and the mapping of errors to exit codes.  (Not ``main.py``: that
module would be shadowed by the ``seer.cli.main`` function, the console
script, which the package re-exports.)

Processes:   seer controller | seer daemon | seer certs init | seer testbed
Experiment:  seer run | seer watch | seer nodes | seer agents | seer set |
             seer start | seer stop | seer command | seer put | seer get |
             seer status | seer stats | seer jobs | seer job | seer report

Exit codes (every client command): the table in seer.cli.common.EPILOG --
0 applied, 1 failed, 2 refused, 3 controller unreachable, 4 unconfirmed.

Every run of `seer` is a fresh process, so start-up is most of a client
command's time: the parser defines only the command given (its family's
module imported then), and `seer --help` lists every command from the table
below without defining any.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from seer import __version__
from seer.cli.common import (
    EPILOG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNCONFIRMED,
    EXIT_UNREACHABLE,
    UsageError,
)

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_OK", "EXIT_REFUSED", "EXIT_UNCONFIRMED",
           "EXIT_UNREACHABLE",
           "build_parser", "main"]

#: Every command, in `seer --help`'s order: the module whose ``define(name,
#: parser)`` gives it its flags and handler, and its line in the listing.
COMMANDS: dict[str, tuple[str, str]] = {
    "controller": ("seer.cli.services", "run the controller"),
    "daemon": ("seer.cli.services", "run a node daemon"),
    "certs": ("seer.cli.certs", "manage certificates"),
    "testbed": ("seer.testbed.cli", "a local testbed in network namespaces"),
    "nodes": ("seer.cli.info", "list the experiment's nodes"),
    "agents": ("seer.cli.info", "list agent types with their commands and variables"),
    "watch": ("seer.cli.info", "a live view of nodes, agent counters and reports"),
    "status": ("seer.cli.info", "show the controller's serial, window and counters"),
    "stats": ("seer.cli.stats", "current rates per link, node and agent group; record them"),
    "dashboard": ("seer.cli.dashboard", "the URL of the experiment's web dashboard"),
    "report": ("seer.cli.report", "plot a recorded run (links, groups, phases) with an HTML page"),
    "set": ("seer.cli.messages", "set agent variables on nodes"),
    "start": ("seer.cli.messages", "start an agent group"),
    "stop": ("seer.cli.messages", "stop an agent group"),
    "run": ("seer.cli.run", "run an experiment script on the controller"),
    "put": ("seer.cli.messages", "send a file or an agent module to nodes"),
    "get": ("seer.cli.messages", "bring a file back from nodes"),
    "command": ("seer.cli.messages", "send any command to an agent group"),
    "jobs": ("seer.cli.jobs", "list the latest commands: who sent what, and their outcomes"),
    "job": ("seer.cli.jobs", "one command's outcome on every node, late ones included"),
}

#: Commands whose help ends without the epilog on exit codes and credentials:
#: `seer testbed` and `seer report` talk to no controller (testbed's help never
#: had it; report's says its own exit codes).
WITHOUT_EPILOG = ("testbed", "report", "controller", "daemon", "certs")


def _wanted(argv: list[str] | None) -> tuple[set[str], set[str]]:
    """(commands to list, commands to define) for this command line.

    ``seer nodes ...`` needs only `nodes`; ``seer --help``, ``seer`` or a
    misspelt command list every command (for the help or the error) and
    define none but a named one; no command line (None) defines them all.
    """
    if argv is None:
        return set(COMMANDS), set(COMMANDS)
    first = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    named = argv[first] if first is not None and argv[first] in COMMANDS else None
    if named is not None and first == 0:
        return {named}, {named}
    return set(COMMANDS), {named} if named else set()


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `seer` parser: for ``argv``, just what parsing it needs; with
    no argument, every command with all its flags."""
    listed, defined = _wanted(argv)
    parser = argparse.ArgumentParser(
        prog="seer", description="SEER: control experiments on network testbeds.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"seer {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        if name not in listed:
            continue
        if name in WITHOUT_EPILOG:
            p = sub.add_parser(name, help=help_text, description=help_text)
        else:
            p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        if name in defined:
            importlib.import_module(module).define(name, p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: this process's); its exit code."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # As typed: `seer run` tells `SCRIPT -- ARGS` from `SCRIPT ARGS` by it
    # (argparse drops the `--`).
    args.command_line = list(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:
        known = _user_error(e)
        if known is None:
            raise
        code, prefix = known
        print(f"seer {args.subcommand}: {prefix}{e}", file=sys.stderr)
        if getattr(args, "json", False):
            # A script reading --json output reads the refusal there too.
            import json

            print(json.dumps({"error": str(e), "kind": _KINDS.get(code, "error"),
                              "exit": code}))
        return code


#: What each exit code of an error is called in --json output.
_KINDS = {EXIT_REFUSED: "refused", EXIT_UNREACHABLE: "unreachable", EXIT_FAILED: "failed"}


#: Errors the user can fix besides UsageError, by module and class name: exit 2.
_REFUSED = (
    ("seer.config", "ConfigError"),
    ("seer.protocol.certs", "CertError"),
    ("seer.testbed.cli", "TestbedError"),
    ("seer.testbed.netns", "ToolFailed"),
)


def _loaded(module: str, name: str) -> type | None:
    """The class, if its module was imported; an exception of a class whose
    module never loaded cannot be at hand, so nothing is imported to check."""
    return getattr(sys.modules.get(module), name, None)


def _user_error(e: Exception) -> tuple[int, str] | None:
    """(exit code, message prefix) for an error the user can fix; None for a bug.

    The error classes are looked up, not imported: a daemon or controller
    must not carry the client and testbed modules (and netaddr, which they
    pull in) for the whole of its life just to name them here, and a client
    command should not load the testbed's.
    """
    refused = tuple(c for c in (_loaded(m, n) for m, n in _REFUSED) if c is not None)
    if isinstance(e, (UsageError, *refused)):
        return EXIT_REFUSED, ""
    client = sys.modules.get("seer.client.errors")
    if client is None:
        return None
    if isinstance(e, client.RequestRefused):
        return EXIT_REFUSED, "refused: "
    if isinstance(e, client.ControllerUnreachable):
        return EXIT_UNREACHABLE, ""
    if isinstance(e, client.SeerError):
        return EXIT_FAILED, ""
    return None
