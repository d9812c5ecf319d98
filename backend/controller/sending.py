"""From a client's request to a stamped message and its RESULT.

COMMAND, SET, PUT and GET all take the same path: parse and check the
request (nothing is sent if it is wrong), resolve its target against the
node table -- the same way CommWrapper's sendToNodes does -- check it
against the targeted nodes' agent catalogue, stamp it, answer ACCEPTED
once it is sent and RESULT once every targeted node's outcome is in (or
its deadline passed).
"""

from __future__ import annotations

from typing import Any, Callable

from backend.controller.comm import CommWrapper, MessageTooLarge
from backend.controller.nodetable import NodeTable
from backend.controller.outcomes import OutcomeTracker
from backend.controller.parsing import RequestError
from backend.net.session import FrameSession
from seer.protocol.targets import Target, TargetError
from seer.protocol.vartypes import Var, VarError, convert_vars
from seer.protocol.wire import Frame

#: A request's header, default timeout and now -> a parsing.Request.
Parser = Callable[[dict[str, Any], float, float], Any]


class RequestSender:
    def __init__(self, comm: CommWrapper, nodes: NodeTable, tracker: OutcomeTracker,
                 clock: Any, default_timeout: float,
                 refuse: Callable[[FrameSession, Frame, str], None]) -> None:
        self.comm = comm
        self.nodes = nodes
        self.tracker = tracker
        self.clock = clock
        self.default_timeout = default_timeout
        self.refuse = refuse
        #: (message, serial, nodes, outcomes, sent at) of every finished request: the
        #: stats pipeline's command log.
        self.on_result: Callable[[dict[str, Any], int, list[str], dict[str, Any], float],
                                 None] | None = None
        #: (serial, message, nodes, sent at) of every request once it is sent: the jobs.
        self.on_accepted: Callable[[int, dict[str, Any], list[str], float], None] | None = None

    def send(
        self,
        sock: FrameSession,
        msg: Frame,
        parse: Parser,
        on_valid: Callable[[dict[str, Any]], None] | None = None,
        on_sent: Callable[[int], None] | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        """Check a client's request, stamp and send it, and answer ACCEPTED
        then RESULT.  The hooks run once it is valid, once it is sent, and
        once every outcome is in."""
        now = self.clock.seconds()
        try:
            request = parse(msg.header, self.default_timeout, now)
            target, nodes = self.comm.resolve(request.target)
            self.check_catalogue(request.message, nodes)
            self.check_group(request.message, target, nodes)
        except (RequestError, TargetError, VarError) as e:
            self.refuse(sock, msg, str(e))
            return
        message = dict(request.message, target=target.wire(nodes), origin=sock.identity.name)
        wait = request.timeout + max(0.0, (request.message.get("time") or 0) - now)
        request_id = msg.get("id")

        def completed(serial: int, outcomes: dict[str, Any]) -> None:
            if on_done is not None:
                on_done(serial)
            sock.send({"type": "RESULT", "id": request_id, "serial": serial, "job": serial,
                       "outcomes": outcomes})
            if self.on_result is not None:
                self.on_result(message, serial, nodes, outcomes, now)

        def sent(serial: int) -> None:
            if on_sent is not None:
                on_sent(serial)
            if self.on_accepted is not None:
                self.on_accepted(serial, message, nodes, now)
            sock.send({
                "type": "ACCEPTED", "id": request_id, "serial": serial, "job": serial,
                "nodes": nodes, "down": self.nodes.missing(nodes),
            })
            self.tracker.expect(serial, nodes, wait, completed,
                                is_state=self.comm.model.is_state(message),
                                due=message.get("time"))
            # A node whose link went silent will not answer in time: say so now.
            for name in nodes:
                record = self.nodes.get(name)
                if record is not None and not record.up and record.unreachable_since:
                    self.tracker.record(name, serial, "unconfirmed", record.why_unconfirmed())

        try:
            encoded = self.comm.check_size(message)
        except MessageTooLarge as e:
            self.refuse(sock, msg, str(e))
            return
        if on_valid is not None:
            on_valid(message)
        self.comm.stamp(message, self.comm.node_set(target, nodes), sent, encoded)

    def check_group(self, message: dict[str, Any], target: Target, nodes: list[str]) -> None:
        """SET and START make a group; any other command must find one on a
        targeted node -- `seer stop FLOODER ff` for a group that never existed
        must not look like a stopped flood.  And an attack agent never starts
        everywhere by default: it needs a target or the group's NODES."""
        if message["type"] != "COMMAND":
            return
        agent, group, command = message["agent"], message["group"], message["command"]
        model = self.comm.model
        if command != "START" and not model.group_on(agent, group, nodes):
            known = ", ".join(model.groups_of(agent)) or "none yet"
            raise RequestError(
                f"{agent} group {group!r} exists on none of the targeted nodes, so {command} "
                f"would do nothing (a SET or START makes a group; the {agent} groups: {known})")
        if command == "START" and target.is_all and self._is_attack(agent, nodes) \
                and not model.has_var(agent, group, "NODES"):
            raise RequestError(
                f"{agent} makes attack traffic: say where it runs, with a target (--target "
                f"NODES) or by setting the group's NODES first; it never starts on every node "
                f"by default")

    def _is_attack(self, agent: str, nodes: list[str]) -> bool:
        description = self.nodes.catalogue(nodes).get(agent) or {}
        return bool(description.get("attack"))

    def check_catalogue(self, message: dict[str, Any], nodes: list[str]) -> None:
        """Refuse, before sending, what the targeted nodes' agents cannot accept."""
        if message["type"] not in ("SET", "COMMAND"):
            return
        registered = [n for n in nodes if (r := self.nodes.get(n)) and r.registered]
        if not registered:
            return  # nobody to ask yet; the nodes check it themselves
        catalogue = self.nodes.catalogue(registered)
        agent_type = message["agent"]
        description = catalogue.get(agent_type)
        if description is None:
            raise RequestError(
                f"no targeted node has an agent of type {agent_type!r} "
                f"(they have: {', '.join(sorted(catalogue)) or 'none'}); see `seer agents`"
            )
        if message["type"] == "SET":
            declared = {v["name"]: Var.from_json(v) for v in description.get("variables", [])}
            convert_vars(declared, message["vars"], agent_type)
        elif message["command"] not in description.get("commands", []):
            raise RequestError(
                f"{agent_type} has no command {message['command']!r} "
                f"(commands: {', '.join(description.get('commands', [])) or 'none'})"
            )
