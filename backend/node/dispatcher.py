"""Hand each message to the agent instance for its (agent type, group).

Instances are created on demand.  Work for one group runs one message at a
time, in serial order -- a START waits for the SET before it even when the
SET's ``configDone`` is asynchronous -- while different groups proceed
independently.  Every message for this node ends in exactly one outcome:
``applied`` (with an optional JSON result), ``failed`` (with the error and a
short traceback) or ``skipped`` (this node is not in the group's NODES).

Message types that are not for agents (PUT, GET) go to the daemon's own
handlers.  An *exclusive* one (PUT: it may bring a new agent module) holds
back every later message until it is done, so a SET for an agent PUT just
before it finds the agent loaded.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections import deque
from typing import Any, Callable

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.agent import Agent, AgentContext
from seer.protocol.messages import RUN_COMMANDS
from backend.runtime.agentloader import AgentRegistry
from seer.protocol.targets import targets_node
from seer.protocol.vartypes import VarError

log = Logger()

GroupKey = tuple[str, str]
#: (serial, status, error, result, at) -> None; ``at`` is when the node
#: started on the message (its clock), for the start skew across nodes.
OutcomeSink = Callable[[int, str, "str | None", Any, float], None]
#: (serial, message) -> Deferred firing with (status, error, result)
SystemHandler = Callable[[int, dict[str, Any]], Deferred]

HANDLER_TIMEOUT = 300.0

#: Errors that describe a user's mistake or a tool's failure: reported
#: without a traceback.  Anything else (a bug) gets the last three frames.
USER_ERRORS = (ValueError, OSError, TimeoutError)


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
    ) -> None:
        self.node = node
        self.registry = registry
        self.make_context = make_context
        self.on_outcome = on_outcome
        self.clock = clock
        self.handler_timeout = handler_timeout
        self.instances: dict[GroupKey, Agent] = {}
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

    # -- entry points -----------------------------------------------------------

    def dispatch(self, serial: int, message: dict[str, Any]) -> bool:
        """Run one delivered message if it targets this node."""
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
                           lambda f: self.on_outcome(serial, "failed", _describe_failure(f), None,
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
        self.on_run_ended(key[0], key[1], start, why)

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
        """Daemon shutdown: give every instance its ``stop``."""
        calls = []
        for key, agent in list(self.instances.items()):
            d = maybeDeferred(agent.shutdown)
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
            result = queue[0]()
            if isinstance(result, Deferred):
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

    def _instance(self, key: GroupKey) -> Agent:
        agent = self.instances.get(key)
        if agent is None:
            cls = self.registry.get(key[0])
            agent = cls()
            agent.attach(self.make_context(*key))
            self.instances[key] = agent
        return agent

    def _run(self, serial: int, message: dict[str, Any], key: GroupKey) -> Deferred | None:
        started = self.clock.seconds()

        def outcome(status: str, error: str | None, result: Any = None) -> None:
            self.on_outcome(serial, status, error, result, started)

        try:
            agent = self._instance(key)
        except Exception as e:
            outcome("failed", _describe(e))
            return None
        if message["type"] == "SET":
            try:
                agent.processArgs(message.get("vars") or {})
            except VarError as e:
                outcome("failed", str(e))
                return None
            handler, args = agent.configDone, None
            command = None
        else:
            command = str(message.get("command"))
            handler = getattr(agent, "handle" + command, None)
            if handler is None:
                outcome("failed", f"{key[0]} has no command {command!r} "
                                  f"(commands: {', '.join(agent.commands()) or 'none'})")
                return None
            if not agent.takes_part():
                outcome("skipped", f"{self.node} is not in NODES of {key[0]} {key[1]}")
                return None
            args = message.get("args") or {}

        def applied(result: Any) -> None:
            if command in RUN_COMMANDS:
                self.run_state[key] = RUN_COMMANDS[command]
                if command == "START":
                    self.run_started[key] = serial
            outcome("applied", None, _jsonable(result))

        def failed(failure: Failure) -> None:
            outcome("failed", _describe_failure(failure))

        try:
            result = _invoke(handler, args)
        except Exception:
            failed(Failure())
            return None
        if isinstance(result, Deferred):
            if not result.called:
                result.addTimeout(self.handler_timeout, self.clock)
            return result.addCallbacks(applied, failed)
        applied(result)
        return None

    def _restore(self, key: GroupKey, entry: dict[str, Any], done: Deferred) -> Deferred | None:
        problem_prefix = f"snapshot of {key[0]} {key[1]}"
        try:
            agent = self._instance(key)
            if entry.get("vars"):
                agent.processArgs(entry["vars"])
        except Exception as e:
            done.callback(f"{problem_prefix}: {_describe(e)}")
            return None
        d = self._call(agent.configDone) if entry.get("vars") else succeed(None)
        wanted = entry.get("run")
        command = next((c for c, s in RUN_COMMANDS.items() if s == wanted), None)
        current = self.run_state.get(key, "stopped")

        def change_run_state(_: Any) -> Any:
            if wanted == "finished":
                # Over on this node: a snapshot never runs it again.
                log.info("snapshot: {agent} {group} not resumed: {why}", agent=key[0],
                         group=key[1], why=entry.get("why") or "its run is over")
                if current == "running":
                    self.run_state[key] = "finished"
                return None
            if command is None or wanted == current or not agent.takes_part():
                return None
            handler = getattr(agent, "handle" + command, None)
            if handler is None:
                return None
            if command == "START":
                log.info("snapshot: {agent} {group} resumed (its run of serial {start})",
                         agent=key[0], group=key[1], start=entry.get("start"))

            def changed(_: Any) -> None:
                self.run_state[key] = wanted
                if command == "START" and isinstance(entry.get("start"), int):
                    self.run_started[key] = entry["start"]

            return self._call(handler, {}).addCallback(changed)

        d.addCallback(change_run_state)
        d.addCallbacks(
            lambda _: done.callback(None),
            lambda f: done.callback(f"{problem_prefix}: {_describe_failure(f)}"),
        )
        return d

    def _call(self, function: Callable[..., Any], args: dict[str, Any] | None = None) -> Deferred:
        d = maybeDeferred(_invoke, function, args)
        if not d.called:
            d.addTimeout(self.handler_timeout, self.clock)
        return d


def _invoke(function: Callable[..., Any], args: dict[str, Any] | None) -> Any:
    """Call a handler with the command's arguments if it takes them."""
    if args is None:
        return function()
    if _takes_argument(function):
        return function(args)
    if args:
        raise TypeError(f"{function.__name__} takes no arguments, got {sorted(args)}")
    return function()


def _takes_argument(function: Callable[..., Any]) -> bool:
    # Handlers are bound methods, new objects each time: ask about the function.
    return _function_takes_argument(getattr(function, "__func__", function),
                                    hasattr(function, "__self__"))


@functools.lru_cache(maxsize=4096)
def _function_takes_argument(function: Callable[..., Any], bound: bool) -> bool:
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    if bound:
        params = params[1:]  # self
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        for p in params
    )


def _jsonable(result: Any) -> Any:
    if result is None or isinstance(result, (dict, list, str, int, float, bool)):
        return result
    return str(result)


def _describe(e: BaseException) -> str:
    text = str(e)
    if isinstance(e, KeyError) and e.args:
        text = str(e.args[0])
    return f"{type(e).__name__}: {text}" if not isinstance(e, (KeyError, VarError)) else text


def _describe_failure(failure: Failure) -> str:
    """The error with a short traceback: the last three frames."""
    error = failure.value
    summary = _describe(error)
    tb = failure.getTracebackObject()
    if tb is None or isinstance(error, USER_ERRORS):
        # A refusal that says what was wrong needs no traceback.
        return summary
    # The last three frames of the agent's own code, not of Twisted's machinery.
    frames = [f for f in traceback.extract_tb(tb) if "/twisted/" not in f.filename][-3:]
    if not frames:
        return summary
    where = " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})" for f in reversed(frames))
    return f"{summary} [at {where}]"
