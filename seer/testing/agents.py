"""A harness for testing one agent: its messages through the node's real Dispatcher.

For agent authors (docs/AGENTS.md, "Testing an agent") and SEER's own
tests.  :class:`AgentHarness` loads an agent class (or the agent module at
a path), gives each simulated node a real
:class:`~backend.node.dispatcher.Dispatcher` and an agent context on a
:class:`~seer.testing.processes.FakeProcessReactor`, and turns SET and
COMMAND into messages exactly as a node receives them.  Each call returns
the outcome per node (status, error, result); a handler that returns a
Deferred stays ``pending`` until the test moves the clock
(:meth:`AgentHarness.advance`) or plays the processes the agent spawned
(``harness.reactor.spawned``).

What it leaves out: the controller's checks of a SET against the catalogue
(the node's own checks -- types, ``validate`` -- do run), the multicast
path and timing (``at`` / ``after``).  The end-to-end tests cover those.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from twisted.internet.defer import succeed

from backend.agent import Agent, AgentContext
from backend.node.dispatcher import Dispatcher
from backend.runtime.agentloader import AgentRegistry
from seer.protocol.targets import parse_target
from seer.testing.processes import FakeProcessReactor

PENDING = "pending"


@dataclass(frozen=True)
class Outcome:
    """What one node did with one message."""

    node: str
    serial: int
    status: str  # applied, failed, skipped -- or pending, until it is done
    error: str | None = None
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "applied"


class Outcomes(dict):
    """Outcome by node for one message; entries change as pending ones finish."""

    @property
    def ok(self) -> bool:
        """Every targeted node applied it (and there was one)."""
        return bool(self) and all(o.ok for o in self.values())

    @property
    def pending(self) -> list[str]:
        return sorted(n for n, o in self.items() if o.status == PENDING)


class AgentHarness:
    """One agent type on simulated nodes, on a clock the test moves.

    ``agent`` is an Agent subclass or the path of an agent module (its one
    agent class; name it with ``agent_type`` if it has several).
    ``node_info`` maps a node to what its agent sees as
    ``context.node_info`` (addresses, interfaces, labels, attributes);
    ``node_table`` is what ``resolveTargets`` looks nodes up in (default:
    every node's node_info).  Agents' files go to ``workdir`` (default: a
    temporary folder, removed with the harness).
    """

    def __init__(self, agent: type[Agent] | str | Path, nodes: list[str] | tuple[str, ...] = ("n1",),
                 *, group: str = "test", agent_type: str | None = None,
                 node_info: dict[str, dict[str, Any]] | None = None,
                 node_table: dict[str, dict[str, Any]] | None = None,
                 workdir: str | Path | None = None, handler_timeout: float = 300.0) -> None:
        self.reactor = FakeProcessReactor()
        self.registry = AgentRegistry()
        self.agent_type = self._load(agent, agent_type)
        self.group = group
        self.nodes = list(nodes)
        if not self.nodes:
            raise ValueError("an AgentHarness needs at least one node")
        self.node_info = {n: dict(_empty_info(), **(node_info or {}).get(n, {}))
                          for n in self.nodes}
        self.node_table = node_table if node_table is not None else self.node_info
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="seer-agent-test-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        #: (node, event, data) for every report, in order.
        self.reports: list[tuple[str, str, dict[str, Any]]] = []
        #: (node, name, data) for every stream sample, in order.
        self.streams: list[tuple[str, str, Any]] = []
        self._serials = itertools.count(1)
        self._outcomes: dict[int, Outcomes] = {}
        # Every process the agents start carries this tag; it is unique, so
        # the sweep in stopProcesses can find no real process with it.
        self._tag = f"seer-testing/{uuid.uuid4()}"
        self.dispatchers = {
            node: Dispatcher(node, self.registry, self._context_maker(node),
                             self._outcome_sink(node), self.reactor, handler_timeout)
            for node in self.nodes
        }

    # -- messages -------------------------------------------------------------------

    def set(self, variables: dict[str, Any] | None = None, *, target: Any = "*",
            **named: Any) -> Outcomes:
        """SET variables (plain values, or ``{"*": v, "n2": w}`` tables)."""
        return self.send({"type": "SET", "vars": dict(variables or {}, **named)}, target)

    def command(self, name: str, args: dict[str, Any] | None = None, *, target: Any = "*",
                **named: Any) -> Outcomes:
        """COMMAND ``name`` with arguments (a dict, or keywords)."""
        return self.send({"type": "COMMAND", "command": name,
                          "args": dict(args or {}, **named)}, target)

    def start(self, target: Any = "*") -> Outcomes:
        return self.command("START", target=target)

    def stop(self, target: Any = "*") -> Outcomes:
        return self.command("STOP", target=target)

    def send(self, message: dict[str, Any], target: Any = "*") -> Outcomes:
        """Any message for this agent group, to the nodes ``target`` selects
        (a spec as the client takes it: ``"n[1-2]"``, ``"@sink"``, a list...)."""
        spec = parse_target(target)
        wire_target = spec.wire(spec.resolve(
            SimpleNamespace(name=n, **info) for n, info in self.node_info.items()))
        serial = next(self._serials)
        outcomes = self._outcomes[serial] = Outcomes()
        full = dict(message, agent=self.agent_type, group=self.group, target=wire_target)
        for node, dispatcher in self.dispatchers.items():
            outcomes[node] = Outcome(node, serial, PENDING)
            if not dispatcher.dispatch(serial, dict(full)):
                del outcomes[node]  # not targeted
        return outcomes

    # -- time, state, what happened ---------------------------------------------------

    def advance(self, seconds: float = 0.0) -> None:
        """Move the clock (timers, handler timeouts, processes' deaths)."""
        self.reactor.advance(seconds)

    def instance(self, node: str | None = None) -> Agent:
        """The agent instance on ``node`` (default: the first node), made by
        the first message that reached it."""
        node = node or self.nodes[0]
        try:
            return self.dispatchers[node].instances[(self.agent_type, self.group)]
        except KeyError:
            raise KeyError(f"no {self.agent_type} {self.group} on {node} yet: "
                           "it is made by the first message for it") from None

    def events(self, event: str) -> dict[str, dict[str, Any]]:
        """The latest data of each node's ``event`` reports."""
        return {node: data for node, name, data in self.reports if name == event}

    def run_state(self, node: str | None = None) -> str:
        node = node or self.nodes[0]
        return self.dispatchers[node].run_state.get((self.agent_type, self.group), "stopped")

    def close(self) -> None:
        """Stop every agent (``stop``, then its processes) and remove the workdir."""
        stopped = [d.stop_all() for d in self.dispatchers.values()]
        # Processes die a turn after their signal; stubborn ones at the
        # SIGKILL after the grace period: move the clock until all are done.
        for _ in range(100):
            if all(d.called for d in stopped):
                break
            self.reactor.advance(0.1)
        for dispatcher in self.dispatchers.values():
            for agent in dispatcher.instances.values():
                if agent.context and agent.context.processes:
                    agent.context.processes.close()
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            tmp.cleanup()

    def __enter__(self) -> AgentHarness:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- wiring ---------------------------------------------------------------------------

    def _load(self, agent: type[Agent] | str | Path, agent_type: str | None) -> str:
        if isinstance(agent, type):
            if not self.registry.add(agent, f"{agent.__module__}.{agent.__qualname__}"):
                raise TypeError("; ".join(e.error for e in self.registry.errors))
            return agent.AGENT_TYPE
        loaded = self.registry.load_file(Path(agent))
        if self.registry.errors:
            raise ImportError("; ".join(f"{e.source}: {e.error}" for e in self.registry.errors))
        if agent_type is None and len(loaded) != 1:
            raise ValueError(f"{agent} defines {len(loaded)} agent types ({', '.join(loaded)}): "
                             "name one with agent_type=")
        chosen = agent_type or loaded[0]
        if chosen not in loaded:
            raise ValueError(f"{agent} has no agent type {chosen!r} ({', '.join(loaded)})")
        return chosen

    def _context_maker(self, node: str):
        def make(agent_type: str, group: str) -> AgentContext:
            workdir = self.workdir / node / f"{agent_type}-{group}"
            workdir.mkdir(parents=True, exist_ok=True)
            return AgentContext(
                node=node, agent_type=agent_type, group=group, reactor=self.reactor,
                report=lambda event, data: self.reports.append((node, event, data)),
                stream=lambda name, data: self.streams.append((node, name, data)),
                node_info=self.node_info[node], workdir=str(workdir),
                node_table=lambda: succeed(self.node_table),
                process_tag=f"{self._tag}/{node}/{agent_type}/{group}",
            )
        return make

    def _outcome_sink(self, node: str):
        def record(serial: int, status: str, error: str | None, result: Any, at: float) -> None:
            outcomes = self._outcomes.get(serial)
            if outcomes is not None:
                outcomes[node] = Outcome(node, serial, status, error, result)
        return record


def _empty_info() -> dict[str, Any]:
    return {"addresses": [], "interfaces": [], "labels": [], "attributes": {}}
