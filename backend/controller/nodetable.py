"""The controller's node table, built from the nodes' INFO.

Each node is known by name, with its experiment addresses, interfaces,
labels and attributes (``sink``, ``role``...), whether it is up (has a live
connection), the last serial it acknowledged in order (this table is the
one place that fact lives), and the agent catalogue it reported.  The experiment's node list, when given, adds the
nodes expected but not (yet) registered, so they can be named; ``required``
nodes are those a client may wait for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable

from backend.controller.statemodel import clock_text
from seer.protocol.targets import check_node_name
from seer.protocol.vartypes import Var
from seer.protocol.wire import dumps

_INFO_LISTS = ("addresses", "labels")


#: The fields of a node record a checkpoint keeps (its catalogue too, by digest).
CHECKPOINTED = ("name", "registered", "addresses", "interfaces", "labels", "attributes",
                "serial", "registered_at", "last_seen", "down_since", "control_address",
                "version", "agent_errors")
#: What a registration journals and a restart restores of it.
REGISTRATION = ("addresses", "interfaces", "labels", "attributes", "agents", "agent_errors",
                "version")


class InfoError(ValueError):
    """An INFO frame that does not describe a node properly."""


@dataclass
class NodeRecord:
    name: str
    expected: bool = False
    required: bool = False
    up: bool = False
    registered: bool = False
    addresses: list[str] = field(default_factory=list)
    interfaces: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    agents: dict[str, Any] = field(default_factory=dict)
    agent_errors: list[dict[str, str]] = field(default_factory=list)
    serial: int = 0
    registered_at: float | None = None
    last_seen: float | None = None
    down_since: float | None = None
    control_address: str | None = None
    version: str = ""
    #: Known from before this controller started, and not registered since.
    restored: bool = False
    #: When the node was last heard from, if its link then went silent.
    unreachable_since: float | None = None
    #: What the last snapshot sent to the node resumed and did not (and why).
    snapshot: dict[str, Any] | None = None
    #: The daemon's counters (datagrams, drops by reason, repairs...).
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self, current_serial: int | None = None) -> dict[str, Any]:
        out = {
            "name": self.name,
            "up": self.up,
            "registered": self.registered,
            "expected": self.expected,
            "required": self.required,
            "addresses": self.addresses,
            "interfaces": self.interfaces,
            "labels": self.labels,
            "attributes": self.attributes,
            "serial": self.serial,
            "registered_at": self.registered_at,
            "last_seen": self.last_seen,
            "down_since": self.down_since,
            "control_address": self.control_address,
            "agents": sorted(self.agents),
            "agent_errors": self.agent_errors,
            "version": self.version,
            "state": self.state,
            "restored": self.restored,
            "unreachable_since": self.unreachable_since,
            "snapshot": self.snapshot,
            "stats": self.stats,
        }
        if current_serial is not None:
            out["lag"] = self.lag(current_serial)
        return out

    @property
    def state(self) -> str:
        """up, unreachable (its link went silent), down, not reconnected
        (since the controller restarted) or never registered."""
        if self.up:
            return "up"
        if not self.registered:
            return "never registered"
        if self.unreachable_since is not None:
            return "unreachable"
        return "not reconnected" if self.restored else "down"

    def why_unconfirmed(self) -> str:
        """Why this node gave no outcome for a message sent to it."""
        if not self.registered:
            return "node never registered"
        if self.restored:
            return "not reconnected since the controller restarted"
        if self.unreachable_since is not None and not self.up:
            return f"unreachable since {clock_text(self.unreachable_since)} (its link went silent)"
        if not self.up:
            return "node is down (its connection to the controller is closed)"
        return "no outcome within the timeout"

    def lag(self, current_serial: int) -> int | None:
        """Serials sent that this node has not acknowledged (None: never registered)."""
        return max(0, current_serial - self.serial) if self.registered else None


def _good_interface(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and isinstance(item.get("label", ""), str)
        and isinstance(item.get("addresses", []), list)
        and all(isinstance(a, str) for a in item.get("addresses", []))
    )


def parse_catalogue(agents: Any) -> dict[str, Any]:
    """An agent catalogue (INFO, CATALOGUE) checked to be what the controller
    validates requests against: each type's commands and typed variables."""
    if not isinstance(agents, dict):
        raise InfoError("agents must be an object (the agent catalogue)")
    for agent_type, description in agents.items():
        if not isinstance(description, dict):
            raise InfoError(f"agent catalogue: {agent_type!r} is not described by an object")
        commands = description.get("commands", [])
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise InfoError(f"agent catalogue: {agent_type} commands must be a list of names")
        variables = description.get("variables", [])
        if not isinstance(variables, list):
            raise InfoError(f"agent catalogue: {agent_type} variables must be a list")
        for variable in variables:
            try:
                Var.from_json(variable)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise InfoError(f"agent catalogue: {agent_type} has a bad variable ({e})") from None
    return agents


def parse_info(header: dict[str, Any]) -> dict[str, Any]:
    """Check an INFO frame's fields; return them normalised."""
    try:
        name = check_node_name(header.get("name"))
    except ValueError as e:
        raise InfoError(f"INFO: {e}") from None
    info: dict[str, Any] = {"name": name}
    for key in _INFO_LISTS:
        value = header.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InfoError(f"INFO: {key} must be a list of strings")
        info[key] = value
    interfaces = header.get("interfaces", [])
    if not isinstance(interfaces, list) or not all(_good_interface(i) for i in interfaces):
        raise InfoError("INFO: interfaces must be a list of objects with a string 'name', "
                        "an optional string 'label' and a list of string 'addresses'")
    info["interfaces"] = interfaces
    attributes = header.get("attributes", {})
    if not isinstance(attributes, dict):
        raise InfoError("INFO: attributes must be an object")
    info["attributes"] = {str(k): str(v) for k, v in attributes.items()}
    info["agents"] = parse_catalogue(header.get("agents", {}))
    errors = header.get("agent_errors", [])
    info["agent_errors"] = errors if isinstance(errors, list) else []
    for key in ("epoch", "serial"):
        value = header.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InfoError(f"INFO: {key} must be a non-negative integer")
        info[key] = value
    info["version"] = str(header.get("version", ""))
    return info


class NodeTable:
    def __init__(self, expected: Iterable[str] = (), required: Iterable[str] = ()) -> None:
        self._nodes: dict[str, NodeRecord] = {}
        #: digest -> catalogue, one object per distinct catalogue (see intern).
        self._catalogues: dict[str, dict[str, Any]] = {}
        #: ids of distinct catalogues -> (those catalogues, their merge).
        self._merged: dict[tuple[int, ...], tuple[list[Any], dict[str, Any]]] = {}
        required = set(required)
        for name in list(expected) + sorted(required):
            check_node_name(name)
            record = self._nodes.setdefault(name, NodeRecord(name))
            record.expected = True
            record.required = record.required or name in required

    def __iter__(self):
        return iter(sorted(self._nodes.values(), key=lambda r: r.name))

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def get(self, name: str) -> NodeRecord | None:
        return self._nodes.get(name)

    def register(self, info: dict[str, Any], now: float, control_address: str) -> NodeRecord:
        """Record a node's INFO (from :func:`parse_info`) and mark it up."""
        record = self._known(info, now, control_address)
        record.up = True
        record.restored = False
        record.unreachable_since = None
        record.last_seen = now
        record.down_since = None
        return record

    def register_restored(self, info: dict[str, Any], now: float,
                          control_address: str | None) -> NodeRecord:
        """A registration replayed from the journal: known, but down until it
        registers with this controller."""
        record = self._known(info, now, control_address)
        record.up = False
        record.restored = True
        record.down_since = now
        return record

    def _known(self, info: dict[str, Any], now: float,
               control_address: str | None) -> NodeRecord:
        record = self._nodes.setdefault(info["name"], NodeRecord(info["name"]))
        for key in REGISTRATION:
            setattr(record, key, info[key])
        record.agents = self.intern(record.agents)
        record.registered = True
        record.registered_at = now
        record.control_address = control_address
        return record

    def forget(self, name: str) -> bool:
        """Drop a node gone for good; False if it is not known."""
        return self._nodes.pop(name, None) is not None

    def acknowledge(self, name: str, serial: int, sent: int) -> NodeRecord | None:
        """``name`` holds every serial up to ``serial`` (never more than was
        ``sent``); acknowledgements never go backwards."""
        record = self._nodes.get(name)
        if record is not None and serial > record.serial:
            record.serial = min(serial, sent)
        return record

    def down(self, name: str, now: float) -> None:
        record = self._nodes.get(name)
        if record is not None and record.up:
            record.up = False
            record.down_since = now

    def up_nodes(self) -> list[NodeRecord]:
        return [r for r in self if r.up]

    def never_registered(self) -> list[str]:
        return [r.name for r in self if r.expected and not r.registered]

    def missing(self, names: Iterable[str]) -> list[str]:
        """Which of ``names`` are not up."""
        return sorted(n for n in names if not (n in self._nodes and self._nodes[n].up))

    def required(self) -> list[str]:
        return [r.name for r in self if r.required]

    def catalogue(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Agent type -> description, from the nodes named (default: all).

        Asked on every SET and COMMAND: the nodes' catalogues are interned (the
        nodes of one experiment mostly share one), so this merges the few
        distinct ones, and a merge is remembered until a catalogue changes."""
        chosen = self if names is None else (self._nodes[n] for n in names if n in self._nodes)
        distinct = list({id(r.agents): r.agents for r in chosen}.values())
        key = tuple(id(c) for c in distinct)
        cached = self._merged.get(key)
        if cached is not None and all(a is b for a, b in zip(cached[0], distinct)):
            return cached[1]
        merged: dict[str, dict[str, Any]] = {}
        for agents in distinct:
            for agent_type, description in agents.items():
                merged.setdefault(agent_type, description)
        if len(self._merged) > 64:
            self._merged.clear()
        self._merged[key] = (distinct, merged)
        return merged

    def intern(self, agents: dict[str, Any]) -> dict[str, Any]:
        """The one copy of this catalogue shared by every node that has it."""
        return self._catalogues.setdefault(self._digest(agents), agents)

    # -- checkpoint ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """What a checkpoint keeps of each node, and the agent catalogues.

        Not the counters: a node sends those again.  Catalogues are kept once
        per distinct catalogue (nodes of one experiment mostly share one), so
        a thousand nodes do not make every checkpoint megabytes long."""
        digests = {id(c): d for d, c in self._catalogues.items()}
        catalogues: dict[str, Any] = {}
        records = []
        for r in self:
            item = {k: getattr(r, k) for k in CHECKPOINTED}
            if r.agents:
                digest = digests.get(id(r.agents)) or self._digest(r.agents)
                catalogues[digest] = r.agents
                item["catalogue"] = digest
            records.append(item)
        return {"records": records, "catalogues": catalogues}

    @staticmethod
    def _digest(agents: dict[str, Any]) -> str:
        return hashlib.sha256(dumps(agents)).hexdigest()[:16]

    def restore(self, data: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Reload records from a checkpoint; every node starts down, known
        from before (older checkpoints kept a bare list, without catalogues)."""
        items = data if isinstance(data, list) else data["records"]
        catalogues = {} if isinstance(data, list) else data.get("catalogues", {})
        for item in items:
            record = self._nodes.setdefault(item["name"], NodeRecord(item["name"]))
            for key in CHECKPOINTED:
                if key in item and key != "name":
                    setattr(record, key, item[key])
            record.agents = self.intern(catalogues.get(item.get("catalogue"), {}))
            record.up = False
            record.restored = record.registered
            record.down_since = item.get("down_since") or item.get("last_seen")
