"""Hand each message to the agent group it is for: (agent type, group).

Groups are made on demand.  Work for one group runs one message at a time,
in serial order -- a START waits for the SET before it even when the SET's
``configDone`` is asynchronous -- while different groups proceed
independently.  Every message for this node ends in exactly one outcome:
``applied`` (with an optional JSON result), ``failed`` (with the error and a
short traceback) or ``skipped`` (this node is not in the group's NODES).

One bad message never harms another: whatever an agent raises or returns
fails that message alone (:mod:`backend.runtime.runner`), its group's queue
moves on, and :meth:`Dispatcher.dispatch` never raises into the daemon's
datagram loop, so the other messages of the datagram run as usual.

Each group runs in a *runner*: inline (an
:class:`~backend.runtime.runner.AgentRunner` in the daemon's own process)
or isolated (an :class:`~backend.node.workers.AgentWorker`: a worker
process of its own).  Which: :meth:`AgentRegistry.isolated
<backend.runtime.agentloader.AgentRegistry.isolated>` with the daemon's
``isolate`` setting.  The run state of every group (what snapshots and
restarts bring back) is kept here, for both kinds.

Message types that are not for agents (PUT, GET) go to the daemon's own
handlers.  An *exclusive* one (PUT: it may bring a new agent module) holds
back every later message until it is done, so a SET for an agent PUT just
before it finds the agent loaded.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Union

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.agent import Agent, AgentContext
from backend.node.workers import AgentWorker, WorkerSupervisor
from backend.runtime.agentloader import AgentRegistry, check_isolate
from backend.runtime.results import describe, describe_failure, json_safe
from backend.runtime.runner import AgentRunner
from seer.protocol.messages import RUN_COMMANDS
from seer.protocol.targets import targets_node

log = Logger()

GroupKey = tuple[str, str]
#: (serial, status, error, result, at) -> None; ``at`` is when the node
#: started on the message (its clock), for the start skew across nodes.
OutcomeSink = Callable[[int, str, "str | None", Any, float], None]
#: (serial, message) -> Deferred firing with (status, error, result)
SystemHandler = Callable[[int, dict[str, Any]], Deferred]
Runner = Union[AgentRunner, AgentWorker]

HANDLER_TIMEOUT = 300.0


class Dispatcher:
    def __init__(
        self,
        node: str,
        registry: AgentRegistry,
        make_context: Callable[[str, str], AgentContext],
        on_outcome: OutcomeSink,
        clock: IReactorTime,
        handler_timeout: float = HANDLER_TIMEOUT,
        system: dict[str, tuple[SystemHandler, bool]] | None = None,
        workers: WorkerSupervisor | None = None,
        isolate: str = "auto",
    ) -> None:
        self.node = node
        self.registry = registry
        self.make_context = make_context
        self.on_outcome = on_outcome
        self.clock = clock
        self.handler_timeout = handler_timeout
        #: Where isolated groups run; None: every group runs inline.
        self.workers = workers
        self.isolate = check_isolate(isolate)
        self.runners: dict[GroupKey, Runner] = {}
        self.run_state: dict[GroupKey, str] = {}
        #: The serial of the START that began each group's current run.
        self.run_started: dict[GroupKey, int] = {}
        #: (agent type, group, start serial, why) -> None: a run ended by itself.
        self.on_run_ended: Callable[[str, str, int, str], None] = lambda *a: None
        self._queues: dict[GroupKey, deque[Callable[[], Any]]] = {}
        #: message type -> (handler, exclusive)
        self.system = dict(system or {})
        self._barrier: Deferred | None = None
        self._held: list[tuple[int, dict[str, Any]]] = []

    @property
    def instances(self) -> dict[GroupKey, Agent]:
        """The agent objects of the groups made so far that run in this process."""
        return {key: runner.agent for key, runner in self.runners.items()
                if runner.agent is not None}

    def groups(self) -> dict[GroupKey, Any]:
        """Every group made so far, as the node's pollers read it: the agent
        object, or for an isolated group its worker's mirror (``counters``,
        ``client_stats``, ``context.processes.running``)."""
        return {key: runner.agent if runner.agent is not None else runner.mirror
                for key, runner in self.runners.items()
                if runner.agent is not None or isinstance(runner, AgentWorker)}

    # -- entry points -----------------------------------------------------------

    def dispatch(self, serial: int, message: dict[str, Any]) -> bool:
        """Run one delivered message if it targets this node; never raises."""
        try:
            return self._dispatch(serial, message)
        except BaseException:  # a message of a shape nobody foresaw, or a bug here
            failure = Failure()
            log.failure("dispatching serial {serial}", failure, serial=serial)
            self.on_outcome(serial, "failed", f"the node could not run it: "
                            f"{describe_failure(failure)}", None, self.clock.seconds())
            return True

    def _dispatch(self, serial: int, message: dict[str, Any]) -> bool:
        if not targets_node(message.get("target"), self.node):
            return False
        if self._barrier is not None:
            self._held.append((serial, message))
            return True
        system = self.system.get(message.get("type"))
        if system is not None:
            handler, exclusive = system
            at = self.clock.seconds()
            d = maybeDeferred(handler, serial, message)
            d.addCallbacks(lambda outcome: self.on_outcome(serial, *outcome, at),
                           lambda f: self.on_outcome(serial, "failed", describe_failure(f), None,
                                                     at))
            if exclusive:
                self.exclusively(d)
            return True
        if message.get("type") not in ("SET", "COMMAND"):
            self.on_outcome(serial, "failed", f"{message.get('type')} is not handled by agents",
                            None, self.clock.seconds())
            return True
        key = (str(message.get("agent")), str(message.get("group")))
        self._enqueue(key, lambda: self._run(serial, message, key))
        return True

    def exclusively(self, work: Deferred) -> None:
        """Hold every later message until ``work`` has fired."""
        self._barrier = work

        def release(result: Any) -> Any:
            if self._barrier is work:
                self._barrier = None
            held, self._held = self._held, []
            for i, (serial, message) in enumerate(held):
                self.dispatch(serial, message)
                if self._barrier is not None:  # another exclusive one: the rest wait again
                    self._held = held[i + 1:] + self._held
                    break
            return result

        work.addBoth(release)

    def run_finished(self, key: GroupKey, why: str) -> None:
        """The agent of ``key`` says its run ended by itself (a bounded
        generator finished): recorded, and told to the controller so that no
        snapshot resumes it."""
        if self.run_state.get(key) != "running":
            return
        self.run_state[key] = "finished"
        start = self.run_started.get(key, 0)
        log.info("{agent} {group}: run of serial {start} finished ({why})",
                 agent=key[0], group=key[1], start=start, why=why)
        self.on_run_ended(key[0], key[1], start, str(why))

    def apply_snapshot(self, groups: list[dict[str, Any]]) -> Deferred:
        """Bring agent groups to a snapshot's variables and run states.

        Fires with the list of problems (strings); never fails.
        """
        results: list[Deferred] = []
        for entry in groups:
            key = (str(entry.get("agent")), str(entry.get("group")))
            done: Deferred = Deferred()
            self._enqueue(key, lambda e=entry, k=key, d=done: self._restore(k, e, d))
            results.append(done)
        return DeferredList(results).addCallback(
            lambda rs: [problem for ok, problem in rs if ok and problem]
        )

    def stop_all(self) -> Deferred:
        """Daemon shutdown: every group's ``stop`` (and every worker's end)."""
        calls = []
        for key, runner in list(self.runners.items()):
            d = maybeDeferred(runner.shutdown)
            d.addErrback(lambda f, k=key: log.failure("stopping {key}", f, key=k))
            calls.append(d)
        return DeferredList(calls)

    # -- per-group queue ----------------------------------------------------------

    def _enqueue(self, key: GroupKey, work: Callable[[], Any]) -> None:
        queue = self._queues.setdefault(key, deque())
        queue.append(work)
        if len(queue) == 1:
            self._run_queue(key)

    def _run_queue(self, key: GroupKey) -> None:
        queue = self._queues[key]
        while queue:
            # Work reports its own outcome; it returns a Deferred only when it
            # is not done yet (no Deferred at all on the common, synchronous path).
            try:
                result = queue[0]()
            except BaseException:  # a bug here (agents' errors are caught where they run)
                log.failure("agent group {key}: its queue", key=key)
                result = None
            if result is not None and isinstance(result, Deferred):
                finished: list[bool] = []
                result.addBoth(lambda _, done=finished: done.append(True))
                if not finished:
                    result.addBoth(lambda _: self._resume(key))
                    return
            queue.popleft()
        del self._queues[key]

    def _resume(self, key: GroupKey) -> None:
        self._queues[key].popleft()
        self._run_queue(key)

    # -- running one message ------------------------------------------------------

    def _runner(self, key: GroupKey) -> Runner:
        runner = self.runners.get(key)
        if runner is None:
            self.registry.get(key[0])  # KeyError naming what is loaded
            context = self._context(key)
            if self.workers is not None and self.registry.isolated(key[0], self.isolate):
                runner = self.workers.runner(key, self.registry.source(key[0]), context,
                                             lambda: self._run_of(key), self.handler_timeout)
            else:
                runner = AgentRunner(lambda: self.registry.get(key[0]), context, self.clock,
                                     self.handler_timeout)
            self.runners[key] = runner
        return runner

    def _context(self, key: GroupKey) -> AgentContext:
        """The daemon's context for a group, with what an agent reports made JSON-safe
        (one bad event must not lose the REPORT it would travel in)."""
        context = self.make_context(*key)
        report, stream = context.report, context.stream
        context.report = lambda event, data: report(str(event), json_safe(data))
        context.stream = lambda name, data: stream(str(name), json_safe(data))
        return context

    def _run_of(self, key: GroupKey) -> dict[str, Any]:
        return {"run": self.run_state.get(key, "stopped"), "start": self.run_started.get(key)}

    def _run(self, serial: int, message: dict[str, Any], key: GroupKey) -> Deferred | None:
        started = self.clock.seconds()

        def record(outcome: Any) -> None:
            status, error, result = outcome
            if status == "applied" and message.get("type") == "COMMAND":
                command = str(message.get("command"))
                if command in RUN_COMMANDS:
                    self.run_state[key] = RUN_COMMANDS[command]
                    if command == "START":
                        self.run_started[key] = serial
            self.on_outcome(serial, status, error, result, started)

        try:
            runner = self._runner(key)
        except BaseException as e:  # no such agent type, or a context that cannot be made
            record(("failed", describe(e), None))
            return None
        outcome = runner.run(serial, message)
        if not isinstance(outcome, tuple):  # a Deferred of the outcome
            return outcome.addCallback(record).addErrback(
                lambda f: record(("failed", f"the node lost track of it: "
                                            f"{describe_failure(f)}", None)))
        record(outcome)
        return None

    def _restore(self, key: GroupKey, entry: dict[str, Any], done: Deferred) -> Deferred | None:
        problem_prefix = f"snapshot of {key[0]} {key[1]}"
        try:
            runner = self._runner(key)
        except BaseException as e:
            done.callback(f"{problem_prefix}: {describe(e)}")
            return None

        def restored(result: Any) -> None:
            if result.state is not None:
                self.run_state[key] = result.state
                if result.state == "running" and isinstance(entry.get("start"), int):
                    self.run_started[key] = entry["start"]
            done.callback(f"{problem_prefix}: {result.problem}" if result.problem else None)

        d = runner.restore(entry, self.run_state.get(key, "stopped"))
        return d.addCallback(restored).addErrback(
            lambda f: done.callback(f"{problem_prefix}: {describe_failure(f)}"))
