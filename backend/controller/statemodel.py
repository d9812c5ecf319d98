"""What every agent group should look like on each node (controller side).

A node that fell too far behind -- its missing serials retired, or it
restarted, or it joined late -- is not sent the messages it missed but a
snapshot: for every agent group, the variables and the run state that the
messages sent so far give *that node* now, plus the state messages still
scheduled for later (a START due at t=60 must not fire early on a node that
was restored at t=30).

The model keeps, per group and per variable, the assignments with the set of
nodes they were sent to and when they take effect (the message's ``time``,
or when it was sent); likewise for the run commands.  An assignment is
dropped once a later one covers all of its nodes, so the model stays small
however many messages are sent.

Only SET (variables), the run commands START/STOP and PUT (files, agent
modules) are state.  Other commands are events; a node that missed one is
told so, by name.

A run that is over stays over: when a node reports that a group's run
ended by itself (its generator finished, its count or duration reached),
the model records it for that node and that START, and a snapshot says
``finished`` (with why) instead of ``running``; so does a run whose
``duration`` variable says it must be over by now, even if the node never
got to report it.  A snapshot never resumes either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from seer.protocol.messages import RUN_COMMANDS

#: What a PUT message says about its file (and what a snapshot lists).
FILE_FIELDS = ("name", "kind", "mode", "size", "sha256")

#: None means "every node, including nodes that register later".
NodeSet = frozenset[str] | None


def _covers(newer: NodeSet, older: NodeSet) -> bool:
    if newer is None:
        return True
    return older is not None and older <= newer


def _includes(nodes: NodeSet, node: str) -> bool:
    return nodes is None or node in nodes


@dataclass
class _Assignment:
    nodes: NodeSet
    value: Any
    serial: int
    at: float
    #: Whether the entries this one covers were already dropped.
    pruned: bool = False

    @property
    def order(self) -> tuple[float, int]:
        # Messages take effect by time, then serial: the Scheduler's order.
        return (self.at, self.serial)


@dataclass
class _GroupModel:
    vars: dict[str, list[_Assignment]] = field(default_factory=dict)
    run: list[_Assignment] = field(default_factory=list)
    #: node -> [serial of the START whose run ended, when, why]
    ended: dict[str, list[Any]] = field(default_factory=dict)


def _node_value(value: Any, node: str) -> Any:
    """A variable's value for ``node`` (a per-node table, or one value)."""
    if isinstance(value, dict):
        return value.get(node, value.get("*"))
    return value


def clock_text(t: float) -> str:
    """A time as people read it in logs and `seer nodes` (UTC, milliseconds)."""
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d} UTC"


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if seconds > 0 else 0.0


def _record(history: list[_Assignment], entry: _Assignment, now: float) -> None:
    """Add ``entry``; drop what a later, already effective entry covers.

    An entry scheduled for later hides nothing until its time, so it only
    prunes others once it is effective (at a later call).
    """
    history.append(entry)
    # Only entries that became effective since the last call can hide more;
    # each does so once, so recording stays linear in the history's length.
    for b in [b for b in history if not b.pruned and b.at <= now]:
        b.pruned = True
        history[:] = [
            a for a in history
            if a is b or not (a.order < b.order and _covers(b.nodes, a.nodes))
        ]


def _latest_for(history: list[_Assignment], node: str, now: float) -> _Assignment | None:
    best = None
    for entry in history:
        if entry.at <= now and _includes(entry.nodes, node):
            if best is None or entry.order > best.order:
                best = entry
    return best


class StateModel:
    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], _GroupModel] = {}
        self._files: dict[tuple[str, str], list[_Assignment]] = {}

    @staticmethod
    def is_state(message: dict[str, Any]) -> bool:
        """Whether a snapshot restores this message's effect."""
        return message.get("type") in ("SET", "PUT") or (
            message.get("type") == "COMMAND" and message.get("command") in RUN_COMMANDS
        )

    def apply(self, serial: int, message: dict[str, Any], nodes: NodeSet, sent_at: float) -> None:
        """Record a message sent at ``sent_at`` to ``nodes`` (None: everyone)."""
        if not self.is_state(message):
            return
        # Nodes run a message whose time has passed at once, in serial
        # order: so must the model.
        at = max(message.get("time") or sent_at, sent_at)
        if message["type"] == "PUT":
            value = {k: message[k] for k in FILE_FIELDS}
            key = (message["kind"], message["name"])
            _record(self._files.setdefault(key, []), _Assignment(nodes, value, serial, at), sent_at)
            return
        key = (message["agent"], message["group"])
        group = self._groups.setdefault(key, _GroupModel())
        if message["type"] == "SET":
            for name, value in message["vars"].items():
                _record(group.vars.setdefault(name, []), _Assignment(nodes, value, serial, at),
                        sent_at)
        else:
            command = {"command": message["command"], "args": message.get("args") or {}}
            _record(group.run, _Assignment(nodes, command, serial, at), sent_at)

    def end_run(self, node: str, agent: str, group: str, start: int, at: float,
                why: str) -> bool:
        """``node`` reports that the run ``start`` (a START's serial) of the
        group ended by itself; False if the model knows no such run."""
        model = self._groups.get((agent, group))
        if model is None:
            return False
        known = model.ended.get(node)
        if known is None or known[0] < start:
            model.ended[node] = [start, at, why]
        return True

    def _run_state(self, model: _GroupModel, run: _Assignment | None, node: str,
                   values: dict[str, Any], now: float) -> tuple[str | None, str | None]:
        """The group's run state for ``node`` now, and why a run is not resumed."""
        if run is None:
            return None, None
        state = RUN_COMMANDS[run.value["command"]]
        if state != "running":
            return state, None
        ended = model.ended.get(node)
        if ended is not None and ended[0] >= run.serial:
            return "finished", f"its run ended on this node at {clock_text(ended[1])} ({ended[2]})"
        duration = _seconds(_node_value(values.get("duration"), node))
        if duration:
            end = run.at + duration + _seconds(_node_value(values.get("warmup"), node))
            if now >= end:
                return "finished", (f"its run was over by {clock_text(end)} "
                                    f"(duration {duration:g} s from {clock_text(run.at)})")
        return state, None

    def snapshot_for(self, node: str, now: float) -> dict[str, Any]:
        """``files``: the files PUT to ``node`` (latest per name);
        ``groups``: each group's variables and run state for ``node`` now
        (``running``, ``stopped``, ``finished`` with ``why``, or None);
        ``scheduled``: [serial, message] of state messages due later."""
        groups = []
        files = []
        later: dict[int, dict[str, Any]] = {}
        for _, history in sorted(self._files.items()):
            latest = _latest_for(history, node, now)
            if latest is not None:
                files.append(latest.value)
            for entry in history:
                if entry.at > now and _includes(entry.nodes, node):
                    later[entry.serial] = dict(entry.value, type="PUT", time=entry.at,
                                               target=[node])
        for (agent, group), model in sorted(self._groups.items()):
            values = {}
            for name, history in model.vars.items():
                latest = _latest_for(history, node, now)
                if latest is not None:
                    values[name] = latest.value
                for entry in history:
                    if entry.at > now and _includes(entry.nodes, node):
                        message = later.setdefault(entry.serial, {
                            "type": "SET", "agent": agent, "group": group, "vars": {},
                            "time": entry.at, "target": [node],
                        })
                        message["vars"][name] = entry.value
            run = _latest_for(model.run, node, now)
            for entry in model.run:
                if entry.at > now and _includes(entry.nodes, node):
                    later[entry.serial] = {
                        "type": "COMMAND", "agent": agent, "group": group,
                        "command": entry.value["command"], "args": entry.value["args"],
                        "time": entry.at, "target": [node],
                    }
            if values or run is not None:
                state, why = self._run_state(model, run, node, values, now)
                entry = {"agent": agent, "group": group, "vars": values, "run": state}
                if why:
                    entry["why"] = why
                if run is not None and run.value["command"] == "START":
                    entry["start"] = run.serial
                groups.append(entry)
        return {"files": files, "groups": groups,
                "scheduled": [[s, later[s]] for s in sorted(later)]}

    def groups(self) -> list[tuple[str, str]]:
        return sorted(self._groups)

    def groups_of(self, agent: str) -> list[str]:
        """The names of the groups of agent type ``agent`` (SET or STARTed)."""
        return sorted(g for a, g in self._groups if a == agent)

    def group_on(self, agent: str, group: str, nodes: list[str]) -> bool:
        """Whether a SET or a run command of the group was sent to any of ``nodes``."""
        model = self._groups.get((agent, group))
        if model is None:
            return False
        histories = [*model.vars.values(), model.run]
        return any(_includes(entry.nodes, node) for history in histories for entry in history
                   for node in nodes)

    def has_var(self, agent: str, group: str, name: str) -> bool:
        """Whether the group's variable ``name`` was ever SET."""
        model = self._groups.get((agent, group))
        return model is not None and bool(model.vars.get(name))

    # -- checkpoint ----------------------------------------------------------------

    def referenced_blobs(self) -> set[str]:
        """SHA-256 of every file a snapshot may still hand out."""
        return {a.value["sha256"] for h in self._files.values() for a in h}

    def to_json(self) -> dict[str, Any]:
        def entries(history: list[_Assignment]) -> list[list[Any]]:
            return [
                [None if a.nodes is None else sorted(a.nodes), a.value, a.serial, a.at]
                for a in history
            ]

        return {
            "groups": [
                {
                    "agent": agent,
                    "group": group,
                    "vars": {name: entries(h) for name, h in model.vars.items()},
                    "run": entries(model.run),
                    "ended": model.ended,
                }
                for (agent, group), model in sorted(self._groups.items())
            ],
            "files": [{"kind": kind, "name": name, "history": entries(h)}
                      for (kind, name), h in sorted(self._files.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StateModel:
        def entries(raw: list[list[Any]]) -> list[_Assignment]:
            return [
                _Assignment(None if nodes is None else frozenset(nodes), value, serial, at)
                for nodes, value, serial, at in raw
            ]

        model = cls()
        for item in data["groups"]:
            model._groups[(item["agent"], item["group"])] = _GroupModel(
                vars={name: entries(h) for name, h in item["vars"].items()},
                run=entries(item["run"]),
                ended={n: list(e) for n, e in item.get("ended", {}).items()},
            )
        for item in data["files"]:
            model._files[(item["kind"], item["name"])] = entries(item["history"])
        return model
