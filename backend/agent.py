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
its context (node name, group, reactor, reporting), and calls
``processArgs`` for SET and ``handleX`` for COMMAND X.  A handler may return
None, a JSON-able dict (returned to the client as the outcome's result), or a
Deferred of either; an exception fails that node's outcome with its message
and leaves everything else running.

Variables are per node with ``'*'`` as the fallback, as in SEER:
``getNodeVar(key, node)`` and ``getNodeTable(key)``.  The ``NODES`` variable,
when set, limits which nodes of the group take part in commands.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from twisted.logger import Logger

from seer.vartypes import Var, VarError, convert_vars

__all__ = ["Agent", "AgentContext", "Var", "VarError", "MENUS"]

MENUS = ("Traffic", "Attack", "Measurement", "Control")

#: Commands that set an agent group's run state, which snapshots restore.
RUN_COMMANDS = {"START": "running", "STOP": "stopped"}

NODES_VAR = Var(
    "NODES",
    "nodelist",
    None,
    "nodes of this group that take part in its commands (default: every "
    "node the command targets)",
)


@dataclass
class AgentContext:
    """What the daemon gives each agent instance."""

    node: str
    agent_type: str
    group: str
    reactor: Any
    report: Callable[[str, dict[str, Any]], None] = lambda event, data: None
    stream: Callable[[str, Any], None] = lambda name, data: None
    node_info: dict[str, Any] = field(default_factory=dict)
    workdir: str = "."


class Agent:
    """Base agent: variable handling, per-node values, reporting."""

    #: The type name experimenters use, e.g. "HTTP".  Required.
    AGENT_TYPE: ClassVar[str] = ""
    #: One line saying what the agent does.
    NICE_NAME: ClassVar[str] = ""
    #: Where a GUI lists it: one of MENUS.
    MENU: ClassVar[str] = "Control"
    #: The agent's variables (NODES is added for every agent).
    VARIABLES: ClassVar[list[Var]] = []

    log = Logger()

    def __init__(self) -> None:
        self.vars: dict[str, dict[str, Any]] = {}
        self.context: AgentContext | None = None

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
        declared = {NODES_VAR.name: NODES_VAR}
        for var in cls.VARIABLES:
            declared[var.name] = var
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
        doc = inspect.getdoc(cls) or ""
        return {
            "type": cls.AGENT_TYPE,
            "nice": cls.NICE_NAME or doc.split("\n", 1)[0],
            "menu": cls.MENU,
            "commands": cls.commands(),
            "variables": [v.to_json() for v in cls.declared_variables().values()],
        }

    # -- variables (SEER API) ---------------------------------------------------

    def processArgs(self, args: dict[str, Any]) -> None:
        """Insert all of the variables, verifying/converting each.

        All or nothing: if any variable is unknown or any value bad, nothing
        changes and VarError names every problem.
        """
        converted = convert_vars(self.declared_variables(), args, self.AGENT_TYPE)
        self.vars.update(converted)

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
        return table.get("*", self._default(key))

    def getNodeTable(self, key: str) -> dict[str, Any]:
        """Every node's value for ``key``, '*' included."""
        table = self.vars.get(key)
        if table is None:
            return {"*": self._default(key)}
        return dict(table)

    def _default(self, key: str) -> Any:
        var = self.declared_variables().get(key)
        if var is None:
            raise KeyError(f"{self.AGENT_TYPE} has no variable {key!r}")
        return None if var.default is None else var.convert(var.default)

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

    def stop(self) -> Any:
        """Called when the daemon shuts down; release everything."""
