"""Agent workers: isolated agent groups in processes of their own, supervised by the daemon.

An isolated group (which ones: :meth:`AgentRegistry.isolated
<backend.runtime.agentloader.AgentRegistry.isolated>`) runs in a worker
process, ``python -m backend.runtime.worker``, one per group, started on
the group's first message and spoken to with the worker protocol
(:mod:`backend.runtime.workerproto`) over its stdin and stdout.  To the
Dispatcher an :class:`AgentWorker` is a runner like the inline
:class:`~backend.runtime.runner.AgentRunner`: ``run``, ``restore``,
``shutdown``.  The shape is ``twisted.runner.procmon``'s: ``spawnProcess``,
a ``ProcessProtocol``, restarts with backoff, all on the reactor the
daemon is given (tests fake ``spawnProcess`` on a clock).

What a worker does cannot stall or kill its node:

* a handler that blocks holds up its own group only -- the daemon and
  every other group go on;
* a worker that exits or crashes (``os._exit``, a segfault) fails the
  message it was running with ``agent worker for TYPE died (exit code N)``
  or ``(signal S, NAME)``, and reports ``worker_died``.  The processes its
  agent had started are swept (by their tag), then it is started again:
  after RESTART_MIN, doubling up to RESTART_MAX while it keeps dying within
  STABLE_AFTER of its start.  Before any other message it is brought back
  to where the group was, as a snapshot would: the variables of every SET
  it applied, then its run state (a run that was going is started again);
  ``worker_restarted`` says so.  Messages wait for the restart unless it is
  more than WAIT_LIMIT away: then they fail at once, saying when it is.
* a worker that sends bytes that are not frames, or frames it should not,
  is killed and restarted in the same way.

At daemon shutdown every worker gets STOP (its agent's ``stop``, then its
processes) and STOP_GRACE seconds to exit; then SIGKILL and a sweep.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.node.workerprocess import WorkerProcess, describe_exit
from backend.runtime import workerproto as wp
from backend.runtime.context import AgentContext
from backend.runtime.processes import sweep as sweep_tagged
from backend.runtime.results import describe, describe_failure
from backend.runtime.runner import Outcome, Restored
from seer.protocol.wire import Frame

log = Logger()

RESTART_MIN = 0.5
RESTART_MAX = 30.0
#: A worker that lived this long before it died starts again after RESTART_MIN.
STABLE_AFTER = 10.0
#: A message waits for a restart due within this many seconds; else it fails at once.
WAIT_LIMIT = 5.0
#: Seconds a worker has to stop its agent at shutdown (its processes get 3 s of those).
STOP_GRACE = 6.0
#: A restarted worker not back to its group's state within twice this (or twice
#: the handler timeout) is killed and restarted.
HANDLER_LIMIT = 300.0
#: The folder that holds ``backend``: a worker runs the daemon's own code.
_ROOT = str(Path(__file__).resolve().parents[2])

IDLE, STARTING, SYNCING, READY, DOWN, BROKEN, STOPPING, STOPPED = (
    "idle", "starting", "syncing", "ready", "down", "broken", "stopping", "stopped")


class WorkerDown(Exception):
    """The group's worker cannot run the message; the text says why."""


class WorkerSupervisor:
    """The agent workers of one daemon, and how they are started and restarted.

    ``blocking(f, *args)`` runs blocking work off the reactor thread (the
    sweep reads /proc); ``sweep(tag)`` kills what a dead worker's agent left.
    """

    def __init__(self, reactor: Any, *, python: str = sys.executable,
                 blocking: Callable[..., Deferred] | None = None,
                 sweep: Callable[[str], Any] = sweep_tagged,
                 restart_min: float = RESTART_MIN, restart_max: float = RESTART_MAX,
                 stable_after: float = STABLE_AFTER, wait_limit: float = WAIT_LIMIT,
                 stop_grace: float = STOP_GRACE) -> None:
        self.reactor = reactor
        self.python = python
        self.blocking = blocking or (
            lambda f, *a: deferToThreadPool(reactor, reactor.getThreadPool(), f, *a))
        self.sweep = sweep
        self.restart_min = restart_min
        self.restart_max = restart_max
        self.stable_after = stable_after
        self.wait_limit = wait_limit
        self.stop_grace = stop_grace
        self.workers: dict[tuple[str, str], AgentWorker] = {}

    def runner(self, key: tuple[str, str], source: dict[str, str], context: AgentContext,
               run_state: Callable[[], dict[str, Any]], timeout: float | None) -> AgentWorker:
        """The runner of an isolated group: its worker, started on its first message.

        ``run_state()`` says the group's run state now (``run``, ``start``), for a restart.
        """
        worker = AgentWorker(self, key, source, context, run_state, timeout)
        self.workers[key] = worker
        return worker

    def restart_delay(self, deaths: int) -> float:
        return min(self.restart_max, self.restart_min * 2 ** deaths)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = _ROOT + (os.pathsep + path if path else "")
        env["PYTHONUNBUFFERED"] = "1"
        return env


class AgentWorker:
    """One isolated group: its worker process, as a runner for the Dispatcher."""

    #: The agent object lives in the worker: the Dispatcher's ``instances`` leave it out
    #: (its ``groups`` have the ``mirror``).
    agent = None

    def __init__(self, supervisor: WorkerSupervisor, key: tuple[str, str],
                 source: dict[str, str], context: AgentContext,
                 run_state: Callable[[], dict[str, Any]], timeout: float | None) -> None:
        self.s = supervisor
        self.reactor = supervisor.reactor
        self.agent_type, self.group = key
        self.source = source
        self.context = context
        self.run_state = run_state
        self.timeout = timeout
        self.label = f"{context.node}/{self.agent_type}/{self.group}"
        self.tag = context.process_tag or f"{self.label}/{os.getpid()}"
        self.state = IDLE
        #: The variables of every SET the worker applied (what a restart restores).
        self.vars: dict[str, Any] = {}
        self.requests = wp.Requests()
        self.waiters: list[Deferred] = []
        self.process: WorkerProcess | None = None
        self.pid: int | None = None
        self.started_at = 0.0
        #: Deaths in a row, each within STABLE_AFTER of its start.
        self.deaths = 0
        self.last_exit: str | None = None
        self._restart_call: Any = None
        self._swept: Deferred = succeed(None)
        self._stopped: Deferred | None = None
        self.broken = ""
        #: What the worker last said of its agent (counters, processes), for the pollers.
        self.mirror = WorkerMirror(self)

    # -- the runner's interface ----------------------------------------------------------

    def run(self, serial: int, message: dict[str, Any]) -> Deferred:
        """Run one SET or COMMAND in the worker; fires with its outcome, never fails."""
        d = self._when_ready()
        d.addCallback(lambda _: self._request(wp.RUN, serial=serial, message=message))
        if self.timeout is not None:
            d.addTimeout(self.timeout, self.reactor)
        return d.addCallbacks(self._outcome, _not_run, callbackArgs=(message,))

    def restore(self, entry: dict[str, Any], current: str) -> Deferred:
        """Bring the group to a snapshot entry; fires with a Restored, never fails."""
        d = self._when_ready()
        d.addCallback(lambda _: self._request(wp.RESTORE, entry=entry, current=current))
        if self.timeout is not None:
            d.addTimeout(2 * self.timeout, self.reactor)  # configDone, then START

        def restored(frame: Frame) -> Restored:
            done = Restored(frame.get("problem"), frame.get("state"),
                            bool(frame.get("vars_applied")))
            if done.vars_applied:
                self.vars.update(entry.get("vars") or {})
            return done

        return d.addCallbacks(restored, lambda f: Restored(_why(f), None, False))

    def shutdown(self) -> Deferred:
        """Daemon shutdown: STOP, STOP_GRACE to exit, then SIGKILL; fires once it has ended."""
        if self._stopped is not None:
            return self._stopped
        if self._restart_call is not None and self._restart_call.active():
            self._restart_call.cancel()
        self._fail_waiters(f"agent worker for {self.agent_type} is stopped: the daemon is "
                           "shutting down")
        process = self.process
        self._stopped = Deferred()
        if process is None:
            self.state = STOPPED
            self._swept.addBoth(lambda _: self._stopped.callback(None))
            return self._stopped
        self.state = STOPPING
        process.send({"type": wp.STOP})
        timer = self.reactor.callLater(self.s.stop_grace, process.kill,
                                       f"it did not stop within {self.s.stop_grace:g} s")
        self._stopped.addBoth(lambda r: (timer.cancel() if timer.active() else None, r)[1])
        return self._stopped

    # -- requests --------------------------------------------------------------------------

    def _when_ready(self) -> Deferred:
        if self.state == IDLE:
            self._start()
        if self.state == READY:
            return succeed(None)
        if self.state == BROKEN:
            return fail(WorkerDown(self.broken))
        if self.state in (STOPPING, STOPPED):
            return fail(WorkerDown(f"agent worker for {self.agent_type} is stopped: the "
                                   "daemon is shutting down"))
        if self.state == DOWN:
            why = self._restart_too_far()
            if why:
                return fail(WorkerDown(why))
        waiter = Deferred(lambda d: self.waiters.remove(d) if d in self.waiters else None)
        self.waiters.append(waiter)
        return waiter

    def _request(self, kind: str, **fields: Any) -> Deferred:
        process = self.process
        if process is None:
            raise WorkerDown(f"agent worker for {self.agent_type} is not running")
        request_id, d = self.requests.new(self._cancelled)
        process.send({"type": kind, "id": request_id, **fields})
        return d

    def _cancelled(self, request_id: int) -> None:
        if self.process is not None:
            self.process.send({"type": wp.CANCEL, "id": request_id})

    def _outcome(self, frame: Frame, message: dict[str, Any]) -> Outcome:
        status, error, result = frame.get("status"), frame.get("error"), frame.get("result")
        if status == "applied" and message.get("type") == "SET":
            self.vars.update(message.get("vars") or {})
        return (str(status), error, result)

    # -- starting, and the worker's frames ---------------------------------------------------

    def _start(self) -> None:
        self.state = STARTING
        process = self.process = WorkerProcess(self)
        argv = [self.s.python, "-m", wp.WORKER_MODULE, self.label]
        try:
            self.reactor.spawnProcess(process, self.s.python, argv, env=self.s.environment())
        except Exception as e:  # no processes or memory left
            self.process = None
            log.error("{label}: could not start an agent worker: {error}", label=self.label,
                      error=describe(e))
            self._died(f"could not be started: {describe(e)}", lived=0.0)
            return
        self.pid = process.transport.pid
        self.started_at = self.reactor.seconds()
        c = self.context
        process.send({"type": wp.SETUP, "node": c.node, "agent": self.agent_type,
                      "group": self.group, "source": self.source, "node_info": c.node_info,
                      "workdir": c.workdir, "process_tag": self.tag,
                      "counters_interval": c.counters_interval})

    def frame_received(self, process: WorkerProcess, frame: Frame) -> None:
        if process is not self.process:
            return  # from a worker already given up on
        handler = {wp.HELLO: self._hello, wp.DONE: self._done, wp.EVENT: self._event,
                   wp.STREAM: self._stream, wp.RUN_ENDED: self._run_ended,
                   wp.ASK: self._ask, wp.STATE: self.mirror.update}.get(frame.type)
        if handler is None:
            process.kill(f"it sent a {frame.type!r} frame, which is not in the worker protocol")
            return
        try:
            handler(frame)
        except Exception:
            log.failure("{label}: handling the worker's {type}", label=self.label,
                        type=frame.type)

    def _hello(self, frame: Frame) -> None:
        if self.state != STARTING:
            self.process.kill("it said HELLO twice")
            return
        if frame.get("error"):
            self.state = BROKEN  # it exits by itself; the next message tries again
            self.broken = f"agent worker for {self.agent_type} {frame.get('error')}"
            self._fail_waiters(self.broken)
            return
        entry = self._resync_entry()
        if entry is None:
            self._ready()
            return
        self.state = SYNCING
        process, limit = self.process, 2 * (self.timeout or HANDLER_LIMIT)
        restoring = self._request(wp.RESTORE, entry=entry, current="stopped")
        restoring.addTimeout(limit, self.reactor)

        def not_restored(failure: Failure) -> None:
            if not failure.check(WorkerDown):  # a death meanwhile is handled where it is seen
                process.kill(f"it did not bring the group back within {limit:g} s")

        restoring.addCallbacks(self._resynced, not_restored)

    def _resync_entry(self) -> dict[str, Any] | None:
        """What a restarted worker is brought back to: the variables, the run state."""
        run = self.run_state()
        if not self.vars and run.get("run") in (None, "stopped"):
            return None
        return {"agent": self.agent_type, "group": self.group, "vars": dict(self.vars),
                "run": run.get("run"), "start": run.get("start"),
                "why": f"its worker died ({self.last_exit})"}

    def _resynced(self, frame: Frame) -> None:
        problem = frame.get("problem")
        if problem:
            log.warn("{label}: restarted worker not fully restored: {problem}",
                     label=self.label, problem=problem)
        self.context.report("worker_restarted", {"pid": self.pid, "after": self.last_exit,
                                                 "problem": problem})
        self._ready()

    def _ready(self) -> None:
        self.state = READY
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _done(self, frame: Frame) -> None:
        self.requests.answer(frame.get("id"), frame)  # a cancelled one is no longer there

    def _event(self, frame: Frame) -> None:
        data = frame.get("data")
        self.context.report(str(frame.get("event")), data if isinstance(data, dict) else {})

    def _stream(self, frame: Frame) -> None:
        self.context.stream(str(frame.get("name")), frame.get("data"))

    def _run_ended(self, frame: Frame) -> None:
        self.context.run_finished(str(frame.get("why") or "its run ended"))

    def _ask(self, frame: Frame) -> None:
        process, request_id, what = self.process, frame.get("id"), frame.get("what")
        if what not in wp.ASKABLE:
            process.send({"type": wp.REPLY, "id": request_id, "ok": False,
                          "error": f"a worker may not ask for {what!r}"})
            return

        def reply(header: dict[str, Any]) -> None:
            if process is self.process:
                process.send(dict(header, type=wp.REPLY, id=request_id))

        maybeDeferred(self.context.node_table).addCallbacks(
            lambda value: reply({"ok": True, "value": value}),
            lambda f: reply({"ok": False, "error": describe(f.value)}))

    # -- the end of a worker --------------------------------------------------------------

    def ended(self, process: WorkerProcess, reason: Failure) -> None:
        """The worker process is gone (its ProcessProtocol says so)."""
        if process is not self.process:
            return
        self.process = None
        how = process.kill_reason or describe_exit(reason)
        if self.state in (STOPPING, STOPPED):
            self.state = STOPPED
            self.requests.fail_all(WorkerDown(f"agent worker for {self.agent_type} stopped: "
                                              "the daemon is shutting down"))
            swept = self._sweep() if process.kill_reason else succeed(None)
            swept.addBoth(lambda _: self._stopped.callback(None))
            return
        if self.state == BROKEN:
            self.state = IDLE
            return
        self._died(how, self.reactor.seconds() - self.started_at, list(process.tail))

    def _died(self, how: str, lived: float, last_words: list[str] = ()) -> None:
        self.last_exit = how
        if lived >= self.s.stable_after:
            self.deaths = 0
        delay = self.s.restart_delay(self.deaths)
        self.deaths += 1
        # DOWN first: the failures below let the Dispatcher move on at once,
        # and the next message must find the worker restarting.
        self.state = DOWN
        self._swept = self._sweep()
        self._restart_call = self.reactor.callLater(delay, self._restart)
        log.warn("{label}: agent worker {pid} died ({how}); restarting in {delay:g} s",
                 label=self.label, pid=self.pid, how=how, delay=delay)
        self.context.report("worker_died", {"pid": self.pid, "how": how, "restart_in": delay,
                                            "stderr": list(last_words)})
        self.requests.fail_all(WorkerDown(
            f"agent worker for {self.agent_type} died ({how}); it is restarted with the "
            "group's variables and run state"))
        why = self._restart_too_far()
        if why:
            self._fail_waiters(why)

    def _restart(self) -> None:
        self._restart_call = None
        self._swept.addCallback(lambda _: self._start() if self.state == DOWN else None)

    def _restart_too_far(self) -> str | None:
        call = self._restart_call
        due = call.getTime() - self.reactor.seconds() if call is not None and call.active() else 0
        if due <= self.s.wait_limit:
            return None
        return (f"agent worker for {self.agent_type} is down: it died {self.deaths} times in a "
                f"row (last: {self.last_exit}); the next restart is in {due:.0f} s")

    def _sweep(self) -> Deferred:
        """Kill what the dead worker's agent had started (in sessions of their own)."""
        d = self.s.blocking(self.s.sweep, self.tag)
        return d.addErrback(lambda f: log.failure("{label}: sweeping {tag}", f,
                                                  label=self.label, tag=self.tag))

    def _fail_waiters(self, why: str) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.errback(WorkerDown(why))


class WorkerMirror:
    """An isolated group's agent as the node's pollers read one: ``counters``,
    ``client_stats`` and its processes (``context.processes.running``, the
    worker itself among them), as of the worker's last STATE frame."""

    def __init__(self, worker: AgentWorker) -> None:
        self._worker = worker
        self.counters: dict[str, Any] = {}
        self.client_stats: dict[Any, dict[str, Any]] = {}
        self._pids: list[int] = []
        self.context = self  # context.processes.running, as on an agent
        self.processes = self

    def update(self, frame: Frame) -> None:
        self.counters = dict(frame.get("counters") or {})
        self.client_stats = dict(frame.get("clients") or {})
        self._pids = [p for p in frame.get("pids") or [] if isinstance(p, int)]

    @property
    def running(self) -> list[int]:
        worker = self._worker
        alive = worker.process is not None and worker.pid is not None
        return ([worker.pid] if alive else []) + (self._pids if alive else [])


def _not_run(failure: Failure) -> Outcome:
    return ("failed", _why(failure), None)


def _why(failure: Failure) -> str:
    return str(failure.value) if failure.check(WorkerDown) else describe_failure(failure)
