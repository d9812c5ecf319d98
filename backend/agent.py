"""backend.agent -- the base class every SEER agent derives from.

An agent is a Python class with a type name, typed variables and one
``handleX`` method per command X::

    from backend.agent import Agent, Var

    class Hello(Agent):
        AGENT_TYPE = "HELLO"
        NICE_NAME = "Says hello"
        VARIABLES = [Var("greeting", "string", "hello", "what to say")]

        def handleSAY(self):
            self.report("said", text=self.getNodeVar("greeting"))

The daemon creates one instance per (agent type, group) on demand, gives it
its context (node name, group, reactor, reporting, processes), and calls
``processArgs`` for SET and ``handleX`` for COMMAND X.  A handler may return
None, a JSON-able dict (returned to the client as the outcome's result), or a
Deferred of either; an exception -- SystemExit and KeyboardInterrupt too --
fails that node's outcome with its message and leaves everything else
running, and so does a result that JSON cannot carry.  Groups of agents
that are not SEER's own run each in a worker process (``ISOLATED``), so
that one that blocks or crashes cannot stall or kill its node.

Variables are per node with ``'*'`` as the fallback, as in SEER:
``getNodeVar(key, node)`` and ``getNodeTable(key)``.  The ``NODES`` variable,
when set, limits which nodes of the group take part in commands.

Traffic generators use SEER's life cycle (:class:`TrafficAgent` wires it to
START and STOP): ``TGStart`` runs ``serverExec`` on the nodes in ``servers``
and ``launchTrafficController`` on the nodes in ``clients``; the traffic
controller is a process of its own that calls ``clientInit`` once and then
``clientOneLoop(spool, dpool, think, sizes)`` over and over -- pick a source
and a destination from the address pools, ``clientExec(src, dst, size)``,
wait the think time -- within the limits ``max_clients``, ``duration`` and
``count``.  ``TGStop`` runs ``serverStop`` and stops every process the agent
started.
"""

from __future__ import annotations

import inspect
import random
from collections import Counter
from typing import Any, ClassVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from backend.runtime.addresspool import AddressPool, PoolAddress
from backend.runtime.agentprocs import AgentProcesses, ProcessFailed
from backend.runtime.context import AgentContext
from backend.runtime.safety import TargetRefused
from backend.runtime.trafficgen import TRAFFIC_VARIABLES, TrafficGenerator, sum_stats
from seer.protocol.messages import RUN_COMMANDS  # noqa: F401  (agents have imported it from here)
from seer.protocol.vartypes import Var, VarError, convert_vars

__all__ = ["Agent", "TrafficAgent", "AgentContext", "AddressPool", "PoolAddress", "Var",
           "VarError", "MENUS", "TRAFFIC_VARIABLES", "ProcessFailed", "TargetRefused"]

MENUS = ("Traffic", "Attack", "Measurement", "Control")


NODES_VAR = Var(
    "NODES",
    "nodelist",
    None,
    "nodes of this group that take part in its commands (default: every "
    "node the command targets)",
)


class Agent(AgentProcesses, TrafficGenerator):
    """Base agent: variable handling, per-node values, reporting."""

    #: The type name experimenters use, e.g. "HTTP".  Required.
    AGENT_TYPE: ClassVar[str] = ""
    #: One line saying what the agent does.
    NICE_NAME: ClassVar[str] = ""
    #: Where a GUI lists it: one of MENUS.
    MENU: ClassVar[str] = "Control"
    #: The agent's variables (NODES is added for every agent).
    VARIABLES: ClassVar[list[Var]] = []
    #: Whether the agent makes attack traffic (default: its MENU is "Attack"):
    #: the controller then refuses to START it on every node by default.
    ATTACK: ClassVar[bool | None] = None
    #: Where its groups run: True, each in a worker process of its own (a
    #: handler that blocks or crashes takes down that worker only); False,
    #: in the daemon's process (no hop: for small, well-tested agents);
    #: None, the daemon decides -- SEER's shipped agents inline, others
    #: isolated.  A daemon's ``isolate = "all"`` or ``"none"`` overrides it.
    ISOLATED: ClassVar[bool | None] = None

    log = Logger()

    def __init__(self) -> None:
        self.vars: dict[str, dict[str, Any]] = {}
        #: The values as they came in the SETs, per node (what a traffic
        #: controller process is given to convert again).
        self.raw_vars: dict[str, Any] = {}
        self.context: AgentContext | None = None
        #: Random numbers for this agent; seeded by ``seed`` in traffic agents.
        self.rng = random.Random()
        #: What the agent did (requests, bytes, errors...): STATS returns it,
        #: and it is streamed to sinks as "counters" while it changes.
        self.counters: Counter[str] = Counter()
        #: The latest "clients" stream of each traffic controller, by PID.
        self.client_stats: dict[int, dict[str, Any]] = {}
        self._counters_call: Any = None
        self._run_processes = set()
        self._stopping = False

    # -- set-up by the runtime ------------------------------------------------

    def attach(self, context: AgentContext) -> None:
        """Called once by the daemon before any SET or command."""
        self.context = context
        self.setup()

    def setup(self) -> None:
        """Override for one-time set-up that needs the context."""

    @property
    def nodename(self) -> str:
        return self.context.node if self.context else ""

    @property
    def group(self) -> str:
        return self.context.group if self.context else ""

    @property
    def reactor(self) -> Any:
        return self.context.reactor if self.context else None

    # -- class description ------------------------------------------------------

    @classmethod
    def declared_variables(cls) -> dict[str, Var]:
        """NODES, then every class's VARIABLES from the base down (later wins)."""
        cached = cls.__dict__.get("_declared_cache")
        if cached is not None:
            return cached
        declared = {NODES_VAR.name: NODES_VAR}
        for klass in reversed(cls.__mro__):
            for var in vars(klass).get("VARIABLES", []):
                declared[var.name] = var
        # Looked up on every variable read: computed once per class.
        cls._declared_cache = declared
        return declared

    @classmethod
    def commands(cls) -> list[str]:
        return sorted(
            name[len("handle"):]
            for name in dir(cls)
            if name.startswith("handle") and len(name) > 6 and name[6].isupper()
            and callable(getattr(cls, name))
        )

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalogue entry a daemon reports and `seer agents` prints."""
        # The class's own docstring only: an inherited one describes the base.
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        return {
            "type": cls.AGENT_TYPE,
            "nice": cls.NICE_NAME or doc.split("\n", 1)[0],
            "menu": cls.MENU,
            "commands": cls.commands(),
            "variables": [v.to_json() for v in cls.declared_variables().values()],
            "attack": cls.MENU == "Attack" if cls.ATTACK is None else bool(cls.ATTACK),
        }

    # -- variables (SEER API) ---------------------------------------------------

    def processArgs(self, args: dict[str, Any]) -> None:
        """Insert all of the variables, verifying/converting each.

        All or nothing: if any variable is unknown or any value bad, nothing
        changes and VarError names every problem.
        """
        converted = convert_vars(self.declared_variables(), args, self.AGENT_TYPE)
        self.validate(converted)
        self.vars.update(converted)
        self.raw_vars.update(args)

    def validate(self, new: dict[str, dict[str, Any]]) -> None:
        """Check a SET's converted values on this node before any is applied.

        ``new`` maps each variable in the SET to its node table.  Raise
        VarError (naming the variable) to refuse the whole SET on this node;
        nothing changes.  For checks only the node can make (is that port
        free here?); types and ranges are checked before, also by the
        controller.
        """

    def configDone(self) -> Any:
        """Called after a SET has been applied; override to react."""

    def getNodeVar(self, key: str, node: str | None = None) -> Any:
        """The value of ``key`` for ``node`` (default: this node), or '*'."""
        node = node or self.nodename
        table = self.vars.get(key)
        if table is None:
            return self._default(key)
        if node in table:
            return table[node]
        return table["*"] if "*" in table else self._default(key)

    def getNodeTable(self, key: str) -> dict[str, Any]:
        """Every node's value for ``key``, '*' included."""
        table = self.vars.get(key)
        if table is None:
            return {"*": self._default(key)}
        return dict(table)

    def _default(self, key: str) -> Any:
        # Converted once per class (read on every command: NODES, for one);
        # a list or table is copied, so a caller that changes it changes no other.
        defaults = type(self).__dict__.get("_defaults_cache")
        if defaults is None:
            defaults = type(self)._defaults_cache = {}
        if key not in defaults:
            var = self.declared_variables().get(key)
            if var is None:
                raise KeyError(f"{self.AGENT_TYPE} has no variable {key!r}")
            defaults[key] = None if var.default is None else var.convert(var.default)
        value = defaults[key]
        return value.copy() if isinstance(value, (list, dict)) else value

    # -- counters -------------------------------------------------------------------

    def count(self, name: str, n: float = 1) -> None:
        """Add to a counter; sinks get the counters within a second."""
        self.counters[name] += n
        interval = self.context.counters_interval if self.context else None
        if interval is not None and self._counters_call is None:
            self._counters_call = self.reactor.callLater(interval, self._stream_counters)

    def _stream_counters(self) -> None:
        self._counters_call = None
        self.stream("counters", dict(self.counters))

    def handleSTATS(self) -> dict[str, Any]:
        """This node's counters, and its traffic controllers' (any agent answers STATS)."""
        out: dict[str, Any] = {"counters": dict(self.counters)}
        if self.client_stats:
            out["clients"] = sum_stats(self.client_stats.values())
        return out

    def handleVARS(self) -> dict[str, Any]:
        """Every variable's value on this node (any agent answers VARS)."""
        out = {}
        for name in self.declared_variables():
            value = self.getNodeVar(name)
            out[name] = value if isinstance(value, (str, int, float, bool, list, type(None))) \
                else str(value)
        return out

    def takes_part(self) -> bool:
        """Whether this node is one of the group's NODES (if NODES is set)."""
        nodes = self.getNodeVar("NODES")
        return nodes is None or self.nodename in nodes

    # -- reporting ----------------------------------------------------------------

    def report(self, event: str, **data: Any) -> None:
        """Send an event with JSON-able data to the controller and sinks."""
        if self.context:
            self.context.report(event, data)

    def stream(self, name: str, data: Any) -> None:
        """Send a sample of continuous data (counters, rates) to sinks."""
        if self.context:
            self.context.stream(name, data)

    # -- processes ----------------------------------------------------------------

    def stop(self) -> Any:
        """Called when the daemon shuts down; override to release what you
        hold (processes the agent started are stopped anyway)."""

    def shutdown(self) -> Deferred:
        """The daemon's shutdown: ``stop`` then every process."""
        return maybeDeferred(self.stop).addBoth(lambda _: self.stopProcesses())

class TrafficAgent(Agent):
    """A traffic generator: START is TGStart, STOP is TGStop.

    Subclasses implement ``serverExec`` and ``clientExec`` (and may override
    ``clientInit``, ``clientOneLoop``, ``serverStop``); their own VARIABLES
    add to TRAFFIC_VARIABLES.
    """

    MENU = "Traffic"
    VARIABLES = TRAFFIC_VARIABLES

    def handleSTART(self) -> Deferred:
        return self.TGStart()

    def handleSTOP(self) -> Deferred:
        return self.TGStop()
