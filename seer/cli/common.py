"""What every command family of `seer` shares: the exit codes, the usage
error, the client and message flags, and the experiment those flags name.

Kept apart from :mod:`seer.cli.entry` so that the families import this and
the entry imports the families, never the other way round.
"""

from __future__ import annotations

import argparse

# Type checkers take any TYPE_CHECKING as true.  It is not typing's: `seer
# --help` loads nothing but argparse and this package, and typing alone would
# add a tenth of that (the client is imported when a command runs).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from seer.client import Experiment

#: One exit code per kind of outcome, shared by every client command (and
#: written out in EPILOG, `seer --help` and the README).
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNCONFIRMED = 0, 1, 2, 3, 4

EPILOG = """\
exit codes:
  0  applied: every targeted node applied it (or was not in the group's NODES)
  1  failed: a node's agent failed it (the outcome says why)
  2  refused: the controller refused the request, or the command line is
     wrong -- nothing was sent
  3  the controller could not be reached
  4  unconfirmed: a node did not answer (unreachable, down, not reconnected,
     or no outcome in time); 1 wins when a node also failed

The controller and credentials come from --controller/--certs/--identity,
else SEER_CONTROLLER, SEER_CERTS, SEER_IDENTITY, else the testbed `seer
testbed up` started (SEER_TESTBED names one if several run), else
127.0.0.1:7700, ./certs and the only experimenter certificate there.
"""


def outcome_exit_code(result: object) -> int:
    """The exit code of a message's outcomes (a seer.client Result)."""
    if result.ok:
        return EXIT_OK
    return EXIT_FAILED if result.failed else EXIT_UNCONFIRMED


def finite_float(text: str) -> float:
    """An argparse type: a number that JSON can carry (not nan, inf or 1e999)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


class UsageError(Exception):
    """A command line that names something impossible; exit code 2."""


def client_flags(parser: argparse.ArgumentParser) -> None:
    """--controller, --certs, --identity and --json, for every client command."""
    parser.add_argument("--controller", metavar="HOST:PORT",
                        help="the controller (default: $SEER_CONTROLLER or 127.0.0.1:7700)")
    parser.add_argument("--certs", metavar="DIR", help="certificate folder (default: $SEER_CERTS or ./certs)")
    parser.add_argument("--identity", metavar="NAME",
                        help="experimenter certificate to use (default: $SEER_IDENTITY or the only one)")
    parser.add_argument("--testbed", metavar="NAME",
                        help="the local testbed to talk to, when several run "
                             "(default: $SEER_TESTBED or the only one)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def message_flags(parser: argparse.ArgumentParser) -> None:
    """--target, --timeout and --after/--at, for the commands that send a message."""
    parser.add_argument("--target", "-t", metavar="SPEC",
                        help="nodes: all (default), names with shell wildcards (client*), "
                             "@ATTR[=VALUE], has:LABEL; comma separated")
    parser.add_argument("--timeout", type=finite_float, metavar="SECONDS",
                        help="how long to wait for every node's outcome (default: the controller's, 10 s)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--after", type=finite_float, metavar="SECONDS",
                      help="act this many seconds from now, on every node together")
    when.add_argument("--at", type=finite_float, metavar="UNIX_TIME", help="act at this time")


def open_experiment(args: argparse.Namespace) -> Experiment:
    """The experiment the client flags (or the environment, or the testbed) name."""
    from seer.client import Experiment

    return Experiment(args.controller, args.certs, args.identity,
                      testbed=getattr(args, "testbed", None))
