"""`seer dashboard`: the URL of the experiment's web page, with its token; a browser on it.

The controller makes a new token each time it starts, so the URL comes from
the controller itself (STATUS's ``dashboard``, which `seer status --json`
prints too).  A browser is opened only where one can show a page -- a
display is there (``DISPLAY`` or ``WAYLAND_DISPLAY``), standard output is a
terminal, and neither ``--no-browser`` nor ``CI`` says otherwise -- so a
script, a test or an SSH session just gets the URL printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from seer.cli.common import EXIT_FAILED, EXIT_OK, client_flags, open_experiment


def can_open_browser(environ: dict[str, str] | None = None, tty: bool | None = None) -> bool:
    """Whether a browser opened here would show the page to someone."""
    environ = os.environ if environ is None else environ
    tty = sys.stdout.isatty() if tty is None else tty
    return tty and bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")) \
        and not environ.get("CI")


def cmd_dashboard(args: argparse.Namespace) -> int:
    with open_experiment(args) as exp:
        status = exp.status()
    url = status.get("dashboard")
    if args.json:
        print(json.dumps({"dashboard": url, "metrics": status.get("metrics")}, indent=2))
        return EXIT_OK if url else EXIT_FAILED
    if not url:
        print("seer dashboard: this controller has no HTTP port (it was started with "
              "--http ''); start it with --http 127.0.0.1:PORT", file=sys.stderr)
        return EXIT_FAILED
    print(url)
    if not args.no_browser and can_open_browser():
        import webbrowser  # only here: it is slow to import and rarely wanted

        webbrowser.open(url)
    return EXIT_OK


def define(name: str, p: argparse.ArgumentParser) -> None:
    """Give `seer dashboard` its description, flags and handler."""
    p.description = ("Print the URL of the experiment's dashboard (its topology with live "
                     "link rates, node states, agent groups and the event log), with the "
                     "token the controller made when it started; open it in a browser when "
                     "a display is there.")
    p.set_defaults(func=cmd_dashboard)
    client_flags(p)
    p.add_argument("--no-browser", action="store_true",
                   help="only print the URL, even where a browser could be opened")
