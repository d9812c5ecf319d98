"""`python -m seer.testbed.supervise FOLDER`: the process that supervises one testbed.

`seer testbed up` starts it (in the host's namespace, in a session of its
own) and it lives as long as the testbed: it reads ``FOLDER/plan.json``
(the programs to run, the backoff and the grace period, written by
:mod:`seer.testbed.runner`), runs them under a
:class:`~seer.testbed.supervisor.Supervisor`, writes the process table to
``FOLDER/processes.json`` at every change, and answers requests on
``FOLDER/supervisor.sock`` (:mod:`seer.testbed.control`).

It makes itself the child subreaper of its descendants: processes that a
daemon left behind when it was killed stay below the supervisor instead of
going to init, are reaped by it, and are stopped with the testbed.  On
SIGTERM or a ``shutdown`` request it stops every program (SIGTERM, SIGKILL
after the grace period), then whatever they left behind, and exits.

It runs on the reactor that ``twisted.internet.task.react`` hands it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from twisted.internet import task, threads
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.protocols.basic import LineOnlyReceiver

from seer.testbed import control, pids
from seer.testbed.supervisor import Backoff, Program, Supervisor

PLAN = "plan.json"
PROCESSES = "processes.json"
#: Seconds between looks for adopted orphans that have ended (zombies to reap).
REAP_INTERVAL = 2.0

log = Logger()


class ControlProtocol(LineOnlyReceiver):
    """One request line in, one reply line out, then the connection closes."""

    delimiter = b"\n"
    MAX_LENGTH = 65536

    def lineReceived(self, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            self._reply({"ok": False, "error": "a request is one line of JSON"})
            return
        d = maybeDeferred(control.answer, self.factory.supervisor, request)
        d.addErrback(lambda f: {"ok": False, "error": f.getErrorMessage()})
        d.addCallback(self._reply)

    def _reply(self, reply: dict[str, Any]) -> None:
        self.sendLine(json.dumps(reply).encode())
        self.transport.loseConnection()


def read_plan(folder: Path) -> tuple[list[Program], Backoff, float]:
    plan = json.loads((folder / PLAN).read_text())
    programs = [Program(p["name"], list(p["argv"]), Path(p["log"]), p.get("cwd"))
                for p in plan["programs"]]
    return programs, Backoff(**plan.get("backoff", {})), float(plan.get("grace", 5.0))


def write_table(folder: Path, table: dict[str, dict[str, Any]]) -> None:
    """processes.json, replaced whole so a reader never sees half of it."""
    me = os.getpid()
    data = {"supervisor": {"name": "supervisor", "pid": me, "start": pids.start_time(me)},
            "processes": table, "updated": time.time()}
    temporary = folder / (PROCESSES + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    temporary.replace(folder / PROCESSES)


def _sweep(grace: float) -> Deferred:
    """Stop what the programs left behind: every remaining descendant."""
    left = pids.descendants([os.getpid()])
    if left:
        log.info("stopping {n} process(es) the testbed's processes left behind: {pids}",
                 n=len(left), pids=[r.pid for r in left])
    # In a thread: the wait for them must not stop the reactor reaping them.
    return threads.deferToThread(pids.stop, left, grace)


def main(reactor: Any, folder_name: str) -> Deferred:
    """Supervise the testbed whose state is in ``folder_name``; fires once
    everything has been stopped (on request or on SIGTERM)."""
    folder = Path(folder_name).resolve()
    if not pids.become_subreaper():
        log.warn("could not become the child subreaper: processes a killed daemon "
                 "leaves behind go to init and are not stopped with the testbed")
    programs, backoff, grace = read_plan(folder)
    supervisor = Supervisor(reactor, programs, backoff=backoff, grace=grace,
                            on_change=lambda table: write_table(folder, table),
                            sweep=lambda: _sweep(grace))
    factory = Factory.forProtocol(ControlProtocol)
    factory.supervisor = supervisor
    socket = control.socket_path(folder)
    socket.unlink(missing_ok=True)  # left by a supervisor that was killed
    os.chdir(folder)  # bound by its short name: AF_UNIX paths are limited to 107 bytes
    reactor.listenUNIX(control.SOCKET, factory, mode=0o600)
    # SIGTERM stops the reactor; this holds the stop until everything is down.
    reactor.addSystemEventTrigger("before", "shutdown", supervisor.shutdown)

    reaper = task.LoopingCall(
        lambda: pids.reap_adopted({c.pid for c in supervisor.children.values() if c.pid}))
    reaper.clock = reactor
    reaper.start(REAP_INTERVAL, now=False)

    done: Deferred = Deferred()

    def finished(_: Any) -> None:
        reaper.stop()
        # (The socket file goes when the reactor closes the port.)  A moment for the shutdown reply to reach the client before the exit.
        reactor.callLater(0.2, done.callback, None)

    supervisor.finished.addCallback(finished)
    # Its own record first: `up` records it too, but may be killed before it can.
    write_table(folder, supervisor.status())
    supervisor.start()
    log.info("supervising {n} processes; control socket {socket}", n=len(programs),
             socket=str(socket))
    return done


def run(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m seer.testbed.supervise STATE-FOLDER")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    task.react(main, args)


if __name__ == "__main__":
    run()
