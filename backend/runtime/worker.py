"""The agent worker: one isolated agent group, in a process of its own.

``python -m backend.runtime.worker LABEL`` is started by the node daemon
(:mod:`backend.node.workers`) for an agent group that runs isolated; LABEL
(node/TYPE/group) is only there for ``ps``.  It speaks the worker protocol
(:mod:`backend.runtime.workerproto`) on its stdin and stdout: it loads the
agent class named in SETUP, runs each RUN and RESTORE through an
:class:`~backend.runtime.runner.AgentRunner` on its own reactor -- so a
handler that blocks holds up this process only -- and passes what the agent
reports, streams and asks of its context to the daemon.

It ends on STOP (the agent's ``stop``, then its processes), when its stdin
closes (the daemon is gone: the same clean stop), or on SIGTERM.  A daemon
killed outright cannot close anything: a watchdog thread notices that the
worker's parent changed and, if the reactor cannot stop cleanly within
ORPHAN_GRACE (a handler still blocks), ends the process.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.runtime import workerproto as wp
from backend.runtime.context import AgentContext
from backend.runtime.results import describe, json_safe
from backend.runtime.runner import AgentRunner
from seer.protocol.wire import Frame, FrameDecoder, WireError, encode_frame, use_orjson

log = Logger()

#: Seconds an orphaned worker gets to stop its agent before it just exits.
ORPHAN_GRACE = 10.0
#: Seconds the last frames get to reach the daemon before the worker exits anyway.
FLUSH_LIMIT = 2.0


def load_agent_class(source: dict[str, str], agent_type: str) -> type:
    """The agent class, loaded again from where the daemon found it."""
    from backend.runtime.agentloader import AgentRegistry

    return AgentRegistry().load_source(source, agent_type)


class WorkerHost:
    """The worker's end of the protocol: frames in, frames out, one agent group.

    ``send`` writes one frame header to the daemon; ``finish(code)`` ends
    the process (the reactor's stop, in :func:`main`); ``load`` finds the
    agent class (tests give their own).
    """

    def __init__(self, reactor: Any, send: Callable[[dict[str, Any]], None],
                 finish: Callable[[int], None],
                 load: Callable[[dict[str, str], str], type] = load_agent_class,
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.reactor = reactor
        #: False once the process is gone (only a worker played in-process outlives it).
        self.alive = alive
        self._send = send
        self.finish = finish
        self.load = load
        self.runner: AgentRunner | None = None
        self.exit_code = 0
        self._running: dict[int, Deferred] = {}
        self._asks = wp.Requests()
        self._stopping: Deferred | None = None
        self._state_call: Any = None
        self._last_state: dict[str, Any] = {}

    # -- frames from the daemon ------------------------------------------------------------

    def frame_received(self, frame: Frame) -> None:
        handler = {wp.SETUP: self._setup, wp.RUN: self._run, wp.RESTORE: self._restore,
                   wp.CANCEL: self._cancel, wp.REPLY: self._reply,
                   wp.STOP: lambda _: self.stop()}.get(frame.type)
        if handler is None:
            log.error("worker: unknown frame {type} from the daemon", type=frame.type)
            return
        try:
            handler(frame)
        except Exception:
            log.failure("worker: handling {type}", type=frame.type)

    def _setup(self, frame: Frame) -> None:
        if self.runner is not None:
            return
        agent_type, group = str(frame.get("agent")), str(frame.get("group"))
        try:
            cls = self.load(frame.get("source") or {}, agent_type)
        except BaseException as e:  # a module that raises anything at import
            self.send({"type": wp.HELLO, "pid": os.getpid(),
                       "error": f"could not load agent {agent_type}: {describe(e)}"})
            self.exit_code = wp.EXIT_UNLOADABLE
            self.finish(self.exit_code)
            return
        context = AgentContext(
            node=str(frame.get("node")), agent_type=agent_type, group=group,
            reactor=self.reactor, node_info=frame.get("node_info") or {},
            workdir=str(frame.get("workdir") or "."), process_tag=str(frame.get("process_tag")),
            counters_interval=frame.get("counters_interval"),
            report=lambda event, data: self.send({"type": wp.EVENT, "event": str(event),
                                                  "data": json_safe(data)}),
            stream=lambda name, data: self.send({"type": wp.STREAM, "name": str(name),
                                                 "data": json_safe(data)}),
            node_table=lambda: self._ask("node_table"),
            run_finished=lambda why: self.send({"type": wp.RUN_ENDED, "why": str(why)}),
        )
        self.runner = AgentRunner(lambda: cls, context, self.reactor, timeout=None)
        self.send({"type": wp.HELLO, "pid": os.getpid()})
        self._state_call = self.reactor.callLater(wp.STATE_INTERVAL, self._state)

    def _state(self) -> None:
        """Each second, the agent's counters and processes if they changed (the pollers')."""
        self._state_call = None
        if self.runner is None or not self.alive():
            return
        agent = self.runner.agent
        if agent is not None:
            state = {"counters": json_safe(dict(agent.counters)),
                     "clients": json_safe({str(k): v for k, v in agent.client_stats.items()}),
                     "pids": list(agent.pids)}
            if state != self._last_state:
                self._last_state = state
                self.send(dict(state, type=wp.STATE))
        self._state_call = self.reactor.callLater(wp.STATE_INTERVAL, self._state)

    def _run(self, frame: Frame) -> None:
        request_id = frame.get("id")
        if self.runner is None:
            self._done(request_id, ("failed", "the worker was not set up", None))
            return
        outcome = self.runner.run(frame.get("serial"), frame.get("message") or {})
        if isinstance(outcome, Deferred):
            self._running[request_id] = outcome
            outcome.addCallback(self._finished, request_id)
        else:
            self._done(request_id, outcome)

    def _finished(self, outcome: Any, request_id: Any) -> None:
        if self._running.pop(request_id, None) is not None:
            self._done(request_id, outcome)

    def _done(self, request_id: Any, outcome: Any) -> None:
        status, error, result = outcome
        self.send({"type": wp.DONE, "id": request_id, "status": status, "error": error,
                   "result": result})

    def _restore(self, frame: Frame) -> None:
        request_id = frame.get("id")
        if self.runner is None:
            self.send({"type": wp.DONE, "id": request_id, "problem": "the worker was not set up",
                       "state": None, "vars_applied": False})
            return
        d = self.runner.restore(frame.get("entry") or {}, str(frame.get("current") or "stopped"))
        d.addCallback(lambda r: self.send({"type": wp.DONE, "id": request_id,
                                           "problem": r.problem, "state": r.state,
                                           "vars_applied": r.vars_applied}))

    def _cancel(self, frame: Frame) -> None:
        d = self._running.pop(frame.get("id"), None)
        if d is not None:
            d.cancel()  # the daemon has already failed this message: nothing is sent

    def _reply(self, frame: Frame) -> None:
        if frame.get("ok"):
            self._asks.answer(frame.get("id"), frame.get("value"))
        else:
            self._asks.fail(frame.get("id"), LookupError(str(frame.get("error"))))

    def _ask(self, what: str) -> Deferred:
        request_id, d = self._asks.new()
        self.send({"type": wp.ASK, "id": request_id, "what": what})
        return d

    # -- frames to the daemon ----------------------------------------------------------------

    def send(self, header: dict[str, Any]) -> None:
        try:
            self._send(header)
        except ValueError as e:  # a frame too large for the protocol
            log.error("worker: could not send {type}: {error}", type=header.get("type"),
                      error=str(e))
            if header.get("type") == wp.DONE and "status" in header:
                self._send({"type": wp.DONE, "id": header.get("id"), "status": "failed",
                            "error": f"the outcome could not be sent back: {e}", "result": None})

    # -- the end -----------------------------------------------------------------------------

    def stop(self) -> Deferred:
        """Stop the agent (its ``stop``, then its processes), then end the process."""
        if self._stopping is None:
            if self._state_call is not None and self._state_call.active():
                self._state_call.cancel()
            runner, self.runner = self.runner, None
            d = runner.shutdown() if runner is not None else succeed(None)
            self._asks.fail_all(LookupError("the worker is stopping"))
            self._stopping = d.addBoth(lambda _: self.finish(self.exit_code))
        return self._stopping


class _Pipe(Protocol):
    """The protocol's byte stream from the daemon, as frames."""

    def __init__(self, host: WorkerHost, stop_reactor: Callable[[], None]) -> None:
        self.host = host
        self.stop_reactor = stop_reactor
        self.decoder = FrameDecoder()
        self.closed = False

    def dataReceived(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except WireError as e:
            log.error("worker: the daemon's frames are garbled ({error}); stopping", error=str(e))
            self.host.stop()
            return
        for frame in frames:
            self.host.frame_received(frame)

    def connectionLost(self, reason: Failure = None) -> None:
        # The daemon is gone (the same clean stop), or we closed the pipes to end.
        self.closed = True
        self.host.stop().addBoth(lambda _: self.stop_reactor())

    def finish(self, code: int) -> None:
        """End: what is still to be written is written, then the pipes close."""
        if self.closed:
            self.stop_reactor()
        else:
            self.transport.loseConnection()


def _watch_parent(reactor: Any, parent: int) -> None:
    """A daemon killed outright leaves its workers to init: stop cleanly if we can."""
    while os.getppid() == parent:
        time.sleep(1.0)
    reactor.callFromThread(lambda: reactor.stop() if reactor.running else None)
    time.sleep(ORPHAN_GRACE)
    os._exit(wp.EXIT_ORPHANED)


def main(argv: list[str] | None = None) -> int:
    # A crash in C (a segfault through ctypes) prints where it happened to
    # stderr, which the daemon logs, and still dies of its signal.
    faulthandler.enable()
    use_orjson()  # the worker protocol's JSON, like its daemon's
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # print() in an agent goes to the log, never into the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    from twisted.internet import reactor, stdio
    from twisted.internet.error import ReactorNotRunning
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    pipe: list[_Pipe] = []

    def send(header: dict[str, Any]) -> None:
        pipe[0].transport.write(encode_frame(header))

    def stop_reactor() -> None:
        try:
            reactor.stop()
        except ReactorNotRunning:  # already stopping (SIGTERM, or the daemon went away)
            pass

    def finish(code: int) -> None:
        pipe[0].finish(code)
        reactor.callLater(FLUSH_LIMIT, stop_reactor)  # a daemon that no longer reads

    host = WorkerHost(reactor, send, finish)
    pipe.append(_Pipe(host, stop_reactor))
    stdio.StandardIO(pipe[0], stdin=protocol_in, stdout=protocol_out, reactor=reactor)
    threading.Thread(target=_watch_parent, args=(reactor, os.getppid()), daemon=True,
                     name="parent-watchdog").start()
    # SIGTERM or SIGINT stop the reactor; before it does, the agent stops.
    reactor.addSystemEventTrigger("before", "shutdown", host.stop)
    reactor.run()
    return host.exit_code


if __name__ == "__main__":
    sys.exit(main())
