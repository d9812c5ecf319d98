"""One agent group's instance, and every call into it.

The daemon's Dispatcher runs an inline group through an :class:`AgentRunner`
in its own process; a worker process (:mod:`backend.runtime.worker`) runs
an isolated group through one too.  Either way, whatever the agent does
stays with the message it was doing it for:

* anything it raises -- any exception, and ``SystemExit`` or
  ``KeyboardInterrupt`` as well -- from its constructor, ``setup``,
  ``processArgs``, ``validate``, ``configDone`` or a handler, at once or
  through a Deferred, is that message's ``failed`` outcome, with the error
  and a short traceback;
* whatever it returns is checked on its own (:mod:`backend.runtime.results`):
  a result JSON cannot carry fails that message, not the REPORT it would
  have travelled in.

Nothing is held back for "the process itself", GeneratorExit included:
GeneratorExit only means something when it is thrown into a suspended
generator at its ``yield``, and no frame here is a generator (an
``inlineCallbacks`` handler's generator is closed by Twisted, inside the
handler's own Deferred).  Raised from a plain call it is one more bad
agent.  A real Ctrl-C never surfaces as a KeyboardInterrupt inside a
handler either: the reactor's own SIGINT handler turns it into a clean stop.

:meth:`AgentRunner.run` answers ``(status, error, result)``, at once or
through a Deferred that never fails; the common, synchronous path makes no
Deferred at all.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.runtime.context import AgentContext
from backend.runtime.results import describe, describe_failure, json_result
from seer.protocol.messages import RUN_COMMANDS
from seer.protocol.vartypes import VarError

log = Logger()
#: What a handler that is done returns, checked by type alone: neither a
#: coroutine, a generator nor a Deferred (whose isinstance goes through its
#: ABC's Python-level check), on the path every command takes.
PLAIN_RESULTS = frozenset({type(None), bool, int, float, str, dict, list, tuple})

#: (status, error, result): applied / failed / skipped.
Outcome = tuple[str, "str | None", Any]


class Restored(NamedTuple):
    """What restoring a snapshot's entry did."""

    problem: str | None     # why it did not all work, or None
    state: str | None       # the group's new run state, or None: unchanged
    vars_applied: bool      # the entry's variables are in the agent now


class AgentRunner:
    """One (agent type, group) on this node: its instance, made on the first
    message, and each SET, COMMAND and snapshot entry run on it.

    ``cls_of`` gives the agent class when the instance is made (a failed
    attempt is tried again with the next message); ``timeout`` bounds a
    handler that answers with a Deferred (None: no bound, the caller keeps one).
    """

    def __init__(self, cls_of: Callable[[], type], context: AgentContext, clock: Any,
                 timeout: float | None) -> None:
        self.cls_of = cls_of
        self.context = context
        self.clock = clock
        self.timeout = timeout
        self.agent: Any = None

    def _instance(self) -> Any:
        if self.agent is None:
            agent = self.cls_of()()
            agent.attach(self.context)
            self.agent = agent
        return self.agent

    # -- one message ----------------------------------------------------------------

    def run(self, serial: int, message: dict[str, Any]) -> Outcome | Deferred:
        """Run the SET or COMMAND of ``serial``; its outcome now, or a Deferred
        of it that never fails."""
        try:
            return self._run(message)
        except BaseException:  # whatever the agent raised: see the module docstring
            return _failed(Failure())

    def _run(self, message: dict[str, Any]) -> Outcome | Deferred:
        agent = self._instance()
        if message.get("type") == "SET":
            try:
                agent.processArgs(message.get("vars") or {})
            except VarError as e:
                return ("failed", str(e), None)
            call, args = agent.configDone, None
        else:
            command = str(message.get("command"))
            call = getattr(agent, "handle" + command, None)
            if call is None:
                return ("failed", f"{self.context.agent_type} has no command {command!r} "
                                  f"(commands: {', '.join(agent.commands()) or 'none'})", None)
            if not agent.takes_part():
                return ("skipped", f"{self.context.node} is not in NODES of "
                                   f"{self.context.agent_type} {self.context.group}", None)
            args = message.get("args") or {}
        result = invoke(call, args)
        if type(result) in PLAIN_RESULTS:  # the common case: nothing to wait for
            return _applied(call, result)
        if inspect.iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            if not result.called and self.timeout is not None:
                result.addTimeout(self.timeout, self.clock)
            return result.addCallbacks(functools.partial(_applied, call), _failed)
        return _applied(call, result)

    # -- a snapshot's entry ----------------------------------------------------------

    def restore(self, entry: dict[str, Any], current: str) -> Deferred:
        """Bring the group to a snapshot entry's variables and run state.

        ``current`` is the run state the group is in now.  Fires with a
        :class:`Restored`; never fails.
        """
        variables = entry.get("vars") or {}
        try:
            agent = self._instance()
            if variables:
                agent.processArgs(variables)
        except BaseException as e:  # whatever the agent raised
            return succeed(Restored(describe(e), None, False))
        d = self._call(agent.configDone) if variables else succeed(None)
        wanted = entry.get("run")
        command = next((c for c, s in RUN_COMMANDS.items() if s == wanted), None)
        changed: list[str] = []

        def change_run_state(_: Any) -> Any:
            if wanted == "finished":
                # Over on this node: a snapshot never runs it again.
                log.info("snapshot: {agent} {group} not resumed: {why}",
                         agent=self.context.agent_type, group=self.context.group,
                         why=entry.get("why") or "its run is over")
                if current == "running":
                    changed.append("finished")
                return None
            if command is None or wanted == current or not agent.takes_part():
                return None
            handler = getattr(agent, "handle" + command, None)
            if handler is None:
                return None
            if command == "START":
                log.info("snapshot: {agent} {group} resumed (its run of serial {start})",
                         agent=self.context.agent_type, group=self.context.group,
                         start=entry.get("start"))
            return self._call(handler, {}).addCallback(lambda _: changed.append(wanted))

        d.addCallback(change_run_state)
        return d.addCallbacks(
            lambda _: Restored(None, changed[-1] if changed else None, bool(variables)),
            lambda f: Restored(describe_failure(f), changed[-1] if changed else None,
                               bool(variables)))

    def _call(self, function: Callable[..., Any], args: dict[str, Any] | None = None) -> Deferred:
        d = maybeDeferred(invoke, function, args)  # maybeDeferred catches BaseException too
        if not d.called and self.timeout is not None:
            d.addTimeout(self.timeout, self.clock)
        return d

    # -- the end ------------------------------------------------------------------------

    def shutdown(self) -> Deferred:
        """The daemon's (or the worker's) shutdown: the agent's ``stop``, then its processes."""
        if self.agent is None:
            return succeed(None)
        d = maybeDeferred(self.agent.shutdown)
        d.addErrback(lambda f: log.failure("stopping {agent} {group}", f,
                                           agent=self.context.agent_type, group=self.context.group))
        return d


def _applied(call: Callable[..., Any], result: Any) -> Outcome:
    if type(result) not in PLAIN_RESULTS and inspect.isgenerator(result):
        return ("failed", f"{_name(call)} returned a generator: decorate it with "
                          "@inlineCallbacks, or make it async def", None)
    try:
        why, value = json_result(result)
    except BaseException:  # a result whose __str__ raises, say
        return _failed(Failure())
    if why is not None:
        return ("failed", f"{_name(call)} returned what cannot be sent back: {why}", None)
    return ("applied", None, value)


def _failed(failure: Failure) -> Outcome:
    return ("failed", describe_failure(failure), None)


def _name(call: Callable[..., Any]) -> str:
    return getattr(call, "__name__", None) or "the handler"


def invoke(function: Callable[..., Any], args: dict[str, Any] | None) -> Any:
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
