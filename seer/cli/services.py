"""`seer controller` and `seer daemon`: run a SEER service until SIGINT or
SIGTERM, then stop it cleanly.

This is the one module of ``seer.cli`` that touches the global Twisted
reactor, and only inside :func:`run_service`: every other command is a
plain blocking program that never loads Twisted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

from seer.cli.common import EXIT_FAILED, EXIT_OK, EXIT_REFUSED


def run_service(build: Callable[[Any], Any], what: str) -> int:
    """Run the service ``build(reactor)`` makes until SIGINT/SIGTERM; stop it cleanly.

    A service that cannot be built (a bad node file, group, state folder ...)
    exits 2; one that fails while starting, or whose ``ready`` Deferred
    fails, exits 1 -- each with one line saying why.
    """
    from backend.net.reactor import install

    install()  # epoll without a log context per event (backend/net/reactor.py)
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    try:
        service = build(reactor)
    except (ValueError, OSError) as e:  # a bad node file, group, state folder ...
        print(f"{what} could not start: {e}", file=sys.stderr)
        return EXIT_REFUSED
    failed: list[str] = []

    def fail(message: str) -> None:
        failed.append(f"{what} could not start: {message}")
        if reactor.running:
            reactor.stop()

    def start() -> None:
        try:
            service.startService()
        except Exception as e:  # a start-up error: say what, stop, exit non-zero
            fail(str(e))
            return
        ready = getattr(service, "ready", None)
        if ready is not None:
            ready.addErrback(lambda f: fail(f.getErrorMessage()))

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown",
                                  lambda: service.stopService() if service.running else None)
    profile_to = os.environ.get("SEER_PROFILE")
    if profile_to:  # SEER_PROFILE=FILE: a cProfile of the whole run (docs/PERFORMANCE.md)
        import cProfile
        import time

        # CPU time, not wall time: with a hundred daemons on two cores, wall
        # time charges a function for every moment the process waited its turn.
        profile = cProfile.Profile(time.process_time)
        try:
            profile.runcall(reactor.run)
        finally:
            profile.dump_stats(f"{profile_to}.{os.getpid()}")
    else:
        reactor.run()
    if failed:
        print(failed[0], file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_controller(args: argparse.Namespace) -> int:
    from backend.tap import make_controller
    from seer.config import CONTROLLER_SETTINGS, load

    settings = load(CONTROLLER_SETTINGS, args.config, vars(args))
    return run_service(lambda reactor: make_controller(settings, reactor), "controller")


def cmd_daemon(args: argparse.Namespace) -> int:
    from backend.tap import make_daemon
    from seer.config import DAEMON_SETTINGS, load

    settings = load(DAEMON_SETTINGS, args.config, vars(args))
    return run_service(lambda reactor: make_daemon(settings, reactor), "daemon")


def define(name: str, p: argparse.ArgumentParser) -> None:
    """Give the subcommand ``name``'s parser its description, settings' flags and handler."""
    from seer.config import CONTROLLER_SETTINGS, DAEMON_SETTINGS, add_flags

    if name == "controller":
        p.description = ("Run the controller: TLS listener for daemons and clients, signed "
                         "multicast to the experiment, checkpoints in --state-dir. Stops "
                         "cleanly on Ctrl-C/SIGTERM.")
        p.set_defaults(func=cmd_controller)
        add_flags(p, CONTROLLER_SETTINGS)
    else:
        p.description = ("Run the node daemon: joins the multicast group on --interface, "
                         "connects to the controller, loads agents and runs what the "
                         "controller sends.")
        p.set_defaults(func=cmd_daemon)
        add_flags(p, DAEMON_SETTINGS)
