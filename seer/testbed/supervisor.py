"""The testbed's supervisor: runs the testbed's processes, restarts one that
dies (with backoff), stops one on request and keeps it stopped, and keeps a
current record of each (PID, start time, state, restarts).

Twisted's ``twisted.runner.procmon.ProcessMonitor`` is the model: every
process is started with ``reactor.spawnProcess`` and watched by a
``ProcessProtocol``; one that ends is started again after a delay that
doubles from ``Backoff.first`` up to ``Backoff.longest`` while it keeps
dying young, and falls back to ``first`` once a run lasted
``Backoff.stable`` seconds.  Unlike procmon, a process stopped on request
stays stopped until it is restarted; each process writes straight into its
own log file (no pipes through the supervisor), where the supervisor also
notes every start, exit and restart; and every change is handed to
``on_change``, so the process table on disk is never stale.

The reactor is injected: tests drive a Supervisor on a FakeProcessReactor
and its clock.  The process that runs it is :mod:`seer.testbed.supervise`.
"""

from __future__ import annotations

import os
import signal as signals
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.error import ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from seer.testbed import pids

log = Logger()

RUNNING, WAITING, STOPPING, STOPPED, RESTARTING = (
    "running", "waiting", "stopping", "stopped", "restarting")


@dataclass(frozen=True)
class Program:
    """A process the supervisor keeps running: its name, argv and log file."""

    name: str
    argv: list[str]
    log: Path
    cwd: str | None = None


@dataclass(frozen=True)
class Backoff:
    """Seconds before a restart: ``first``, times ``factor`` for every quick
    death in a row, at most ``longest``; a run of ``stable`` seconds resets it."""

    first: float = 0.5
    factor: float = 2.0
    longest: float = 30.0
    stable: float = 10.0

    def next(self, previous: float, ran: float) -> float:
        if previous <= 0 or ran >= self.stable:
            return self.first
        return min(previous * self.factor, self.longest)


@dataclass
class Child:
    """One program's life: its current process (if any) and its history."""

    program: Program
    state: str = STOPPED
    pid: int | None = None
    start: int | None = None  # /proc start time of the current process
    started_at: float | None = None  # reactor seconds
    restarts: int = 0  # restarts after an unexpected exit (not on request)
    delay: float = 0.0  # the last backoff delay used
    last_exit: str | None = None
    next_start: float | None = None
    transport: Any = None
    watch: Any = None  # the protocol of the current process
    timer: Any = None  # the pending restart
    kill_timer: Any = None  # SIGKILL after the grace period
    waiters: list[Deferred] = field(default_factory=list)  # stop() callers
    restart_waiters: list[Deferred] = field(default_factory=list)  # restart() callers


class _Watch(ProcessProtocol):
    """Tells the supervisor when its process has ended."""

    def __init__(self, supervisor: Supervisor, child: Child) -> None:
        self.supervisor = supervisor
        self.child = child

    def processEnded(self, reason: Failure) -> None:
        self.supervisor._ended(self.child, self, reason)


def describe_exit(reason: Failure) -> str:
    """'exit code 3', 'killed by SIGKILL', 'exit code 0'."""
    value = reason.value
    if isinstance(value, ProcessTerminated) and value.signal is not None:
        try:
            return f"killed by {signals.Signals(value.signal).name}"
        except ValueError:
            return f"killed by signal {value.signal}"
    return f"exit code {getattr(value, 'exitCode', None) or 0}"


class Supervisor:
    """Runs ``programs`` on ``reactor``; see the module docstring."""

    def __init__(self, reactor: Any, programs: list[Program], *, backoff: Backoff = Backoff(),
                 grace: float = 5.0, env: dict[str, str] | None = None,
                 on_change: Callable[[dict[str, dict[str, Any]]], None] = lambda table: None,
                 start_time: Callable[[int], int | None] = pids.start_time,
                 sweep: Callable[[], Any] = lambda: None) -> None:
        self.reactor = reactor
        self.backoff = backoff
        self.grace = grace
        self.env = dict(os.environ if env is None else env)
        self.on_change = on_change
        self.start_time = start_time
        # Called once every program has stopped at shutdown: stops what they left behind.
        self.sweep = sweep
        self.children = {p.name: Child(p) for p in programs}
        self.shutting_down = False
        #: Fires once :meth:`shutdown` has stopped everything.
        self.finished: Deferred = Deferred()

    # -- requests ---------------------------------------------------------------------

    def start(self) -> None:
        """Start every program (in the order given)."""
        for child in self.children.values():
            self._spawn(child)

    def restart(self, name: str) -> Deferred:
        """Start ``name`` again now: a running one is stopped first, a stopped
        or waiting one is started at once; the backoff starts afresh.  Fires
        with its status once the new process has been started."""
        child = self._child(name)
        if self.shutting_down:
            raise SupervisorError("the testbed is shutting down")
        child.delay = 0.0
        if child.state in (WAITING, STOPPED):
            self._cancel(child)
            self._note(child, "restart requested")
            self._spawn(child)
            return succeed(self.status()[name])
        if child.state in (RUNNING, STOPPING):
            child.state = RESTARTING
            self._note(child, "restart requested: stopping it first")
            self._terminate(child)
            self._changed()
        d: Deferred = Deferred()
        child.restart_waiters.append(d)
        return d

    def stop(self, name: str) -> Deferred:
        """Stop ``name`` and keep it stopped (until :meth:`restart`); fires
        with its status once its process has ended."""
        child = self._child(name)
        if child.state in (WAITING, STOPPED):
            self._cancel(child)
            if child.state != STOPPED:
                self._note(child, "stopped on request (it was waiting to restart)")
            child.state = STOPPED
            self._changed()
            return succeed(self.status()[name])
        if child.state != STOPPING:
            child.state = STOPPING
            self._note(child, "stop requested")
            self._terminate(child)
            self._changed()
        d: Deferred = Deferred()
        child.waiters.append(d)
        return d

    def shutdown(self) -> Deferred:
        """Stop everything, for good, then run the sweep; fires when done
        (as does :attr:`finished`).  Asking twice is asking once."""
        if not self.shutting_down:
            self.shutting_down = True
            stopped = [self.stop(name) for name in self.children]
            d = DeferredList(stopped, consumeErrors=True)
            d.addCallback(lambda _: maybeDeferred(self.sweep))
            d.addErrback(lambda f: log.failure("sweeping what the processes left behind", f))
            d.addCallback(lambda _: self.finished.callback(None))
        waiter: Deferred = Deferred()
        self.finished.addBoth(lambda result: (waiter.callback(None), result)[1])
        return waiter

    def status(self) -> dict[str, dict[str, Any]]:
        """Every program's state, PID, start time, restarts and last exit."""
        now = self.reactor.seconds()
        table = {}
        for name, c in self.children.items():
            table[name] = {
                "name": name, "state": c.state, "pid": c.pid, "start": c.start,
                "restarts": c.restarts, "last_exit": c.last_exit,
                "started_at": c.started_at, "log": str(c.program.log),
                "uptime": round(now - c.started_at, 1) if c.pid and c.started_at else None,
                "next_start_in": round(max(0.0, c.next_start - now), 1)
                if c.state == WAITING and c.next_start is not None else None,
            }
        return table

    def records(self) -> list[pids.Record]:
        """The running processes, as PID records."""
        return [pids.Record(n, c.pid, c.start) for n, c in self.children.items() if c.pid]

    # -- the processes ----------------------------------------------------------------

    def _child(self, name: str) -> Child:
        try:
            return self.children[name]
        except KeyError:
            raise SupervisorError(f"no process called {name!r}; there are: "
                                  f"{', '.join(self.children)}") from None

    def _spawn(self, child: Child) -> None:
        program = child.program
        child.timer = child.next_start = None
        watch = _Watch(self, child)
        try:
            out = os.open(program.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            devnull = os.open(os.devnull, os.O_RDONLY)
            try:
                # No pipes: the child writes its own log, so a slow or busy
                # supervisor never blocks it, and its log survives the supervisor.
                child.transport = self.reactor.spawnProcess(
                    watch, program.argv[0], program.argv, env=self.env, path=program.cwd,
                    childFDs={0: devnull, 1: out, 2: out})
            finally:
                os.close(out)
                os.close(devnull)
        except OSError as e:
            self._note(child, f"could not be started: {e}")
            self._died(child, f"not started: {e}", ran=0.0)
            return
        child.watch = watch
        child.pid = child.transport.pid
        # Read at once: this start time is what tells the process from a later
        # one that is handed the same PID.
        child.start = self.start_time(child.pid)
        child.started_at = self.reactor.seconds()
        child.state = RUNNING
        self._note(child, f"started, pid {child.pid}")
        self._changed()

    def _terminate(self, child: Child) -> None:
        if child.transport is None:
            return
        self._signal(child, "TERM")
        if child.kill_timer is None or not child.kill_timer.active():
            child.kill_timer = self.reactor.callLater(self.grace, self._kill, child)

    def _kill(self, child: Child) -> None:
        child.kill_timer = None
        if child.transport is not None:
            self._note(child, f"still running {self.grace:g} s after SIGTERM: SIGKILL")
            self._signal(child, "KILL")

    def _signal(self, child: Child, name: str) -> None:
        # Through Twisted's transport: the child is not reaped until it says
        # so, so its PID cannot have been handed to another process.
        try:
            child.transport.signalProcess(name)
        except Exception:  # ProcessExitedAlready: its end is on the way
            pass

    def _ended(self, child: Child, watch: _Watch, reason: Failure) -> None:
        if watch is not child.watch:
            return  # an earlier process of this program: already dealt with
        how = describe_exit(reason)
        ran = self.reactor.seconds() - (child.started_at or self.reactor.seconds())
        child.transport = child.watch = None
        child.pid = child.start = None
        child.last_exit = how
        if child.kill_timer is not None and child.kill_timer.active():
            child.kill_timer.cancel()
        child.kill_timer = None
        if child.state == STOPPING or self.shutting_down:
            child.state = STOPPED
            self._note(child, f"stopped ({how})")
            self._changed()
            self._tell(child, "waiters")
            self._tell(child, "restart_waiters")  # a restart that a shutdown overtook
            return
        if child.state == RESTARTING:
            self._note(child, f"ended ({how}); starting it again")
            self._spawn(child)
            self._tell(child, "waiters")  # a stop that this restart overtook
            self._tell(child, "restart_waiters")
            return
        self._died(child, how, ran)

    def _tell(self, child: Child, which: str) -> None:
        waiters = getattr(child, which)
        setattr(child, which, [])
        for d in waiters:
            d.callback(self.status()[child.program.name])

    def _died(self, child: Child, how: str, ran: float) -> None:
        """An exit nobody asked for: start it again after the backoff delay."""
        child.delay = self.backoff.next(child.delay, ran)
        child.restarts += 1
        child.last_exit = how
        child.state = WAITING
        child.next_start = self.reactor.seconds() + child.delay
        child.timer = self.reactor.callLater(child.delay, self._respawn, child)
        self._note(child, f"exited unexpectedly ({how}) after {ran:.1f} s; restarting in "
                          f"{child.delay:g} s (restart {child.restarts})")
        self._changed()

    def _respawn(self, child: Child) -> None:
        child.timer = None
        if child.state == WAITING and not self.shutting_down:
            self._spawn(child)

    def _cancel(self, child: Child) -> None:
        if child.timer is not None and child.timer.active():
            child.timer.cancel()
        child.timer = child.next_start = None

    # -- telling others ---------------------------------------------------------------

    def _note(self, child: Child, text: str) -> None:
        """A line in the supervisor's log and in the process's own log."""
        name = child.program.name
        log.info("{name}: {text}", name=name, text=text)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.reactor.seconds()))
        try:
            with open(child.program.log, "a") as f:
                f.write(f"{stamp} [seer testbed supervisor] {name}: {text}\n")
        except OSError:
            pass  # the supervisor's own log has it

    def _changed(self) -> None:
        try:
            self.on_change(self.status())
        except Exception:
            log.failure("recording the process table")


class SupervisorError(Exception):
    """A request the supervisor cannot carry out (unknown name, shutting down)."""
