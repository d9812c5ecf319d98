"""What node daemons send the controller over their TLS link.

INFO registers a daemon (it is welcomed with the datagram keys, and a
snapshot when it is too far behind to repair); REPORT carries its
cumulative acknowledgement, per-message outcomes and agent events; STREAM
continuous agent data for sinks; NACK asks for missed serials; TABLE asks
for every node's addresses (address pools); CATALOGUE says its agent types
changed.  FETCH and FILE are the file relay's.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from backend.controller.nodetable import REGISTRATION, InfoError, parse_catalogue, parse_info
from backend.controller.parsing import RequestError, parse_nack
from backend.net.session import FrameSession
from seer.protocol.wire import Frame

log = Logger()

OUTCOME_STATUSES = ("applied", "failed", "skipped")
#: What a node's report or stream may pass on to sinks -- never an "id",
#: which a client would take for the answer to one of its requests.
REPORT_FIELDS = ("agent", "group", "event", "data", "time")
STREAM_FIELDS = ("agent", "group", "name", "data", "time")


def sink_frame(kind: str, node: str, source: dict[str, Any],
               fields: tuple[str, ...]) -> dict[str, Any]:
    frame = {k: source[k] for k in fields if k in source}
    frame.update(type=kind, node=node)
    return frame


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class NodeDesk:
    def __init__(self, controller: Any) -> None:
        self.c = controller

    def info(self, sock: FrameSession, msg: Frame) -> None:
        """A daemon registers (or re-registers) and is welcomed with the keys."""
        c = self.c
        try:
            info = parse_info(msg.header)
        except InfoError as e:
            self._refuse_registration(sock, str(e), "refused_info")
            return
        if info["name"] != sock.identity.name:
            self._refuse_registration(sock, f"this certificate is for node "
                                            f"{sock.identity.name!r}, not {info['name']!r}",
                                      "refused_impersonation")
            return
        name = info["name"]
        previous = c.node_sessions.get(name)
        if previous is not None and previous is not sock:
            log.info("node {node} reconnected; closing its old connection", node=name)
            previous.state.pop("node", None)
            previous.close()
        c.node_sessions[name] = sock
        sock.state["node"] = name
        now = c.reactor.seconds()
        record = c.nodes.register(info, now, sock.peer)
        c.persistence.record(c.comm, {"registered": dict(
            {k: info[k] for k in REGISTRATION}, name=name, control_address=sock.peer)})
        comm = c.comm
        comm.flush()
        current = comm.sent_serial
        welcome: dict[str, Any] = {
            "type": "WELCOME", "epoch": comm.epoch, "serial": current,
            "keys": comm.keys.verifying().to_json(), "tag": comm.tags.admit(name),
            "ping_interval": c.ping_interval,
            "controller": c.name,
            "heartbeat": {"interval": c.heartbeat.interval, "timeout": c.heartbeat.timeout},
        }
        report = c.reports.open(name)
        if report is not None:  # outcomes by UDP, under a key of this node's own
            welcome["report"] = report
        if info["epoch"] == comm.epoch and info["serial"] <= current:
            record.serial = info["serial"]
            if info["serial"] < current and not comm.window.covers(info["serial"] + 1, current):
                welcome["snapshot"] = self.snapshot_for(name, now)
        else:
            # A new daemon, another epoch, or a node ahead of us: start it
            # afresh from the state as of now.
            welcome["reset"] = True
            welcome["snapshot"] = self.snapshot_for(name, now)
            record.serial = current
        sock.send(welcome)
        log.info("node {node} registered from {peer} (its serial {theirs}, ours {ours}{how})",
                 node=name, peer=sock.peer, theirs=info["serial"], ours=current,
                 how=", snapshot" if "snapshot" in welcome else "")
        c.experimenter.node_came_up()

    def _refuse_registration(self, sock: FrameSession, why: str, counter: str) -> None:
        """Answer an INFO that cannot be registered (the seed's register-ack,
        negative): REFUSED says why and that retrying will not help."""
        self.c.count(counter)
        log.warn("refused the registration of {peer} ({who}): {why}", peer=sock.peer,
                 who=sock.identity, why=why)
        sock.send({"type": "REFUSED", "error": why, "retry": False})
        sock.close()

    def report(self, sock: FrameSession, msg: Frame) -> None:
        """Acknowledgements, per-message outcomes and agent events from a node."""
        self.apply_report(sock.state["node"], msg.header)

    def apply_report(self, node: str, msg: dict[str, Any]) -> None:
        """A REPORT's fields from ``node``, by TLS or by a report datagram."""
        c = self.c
        record = c.nodes.get(node)
        if record is not None:
            record.last_seen = c.reactor.seconds()
        ack = msg.get("ack")
        if _is_int(ack):
            c.comm.checkSerial(node, ack)
        stats = msg.get("stats")
        if isinstance(stats, dict) and record is not None:
            record.stats = stats
        for outcome in msg.get("outcomes") or []:
            try:
                serial, status, error, result, *rest = outcome
            except (TypeError, ValueError):
                c.count("bad_outcomes")
                continue
            if status not in OUTCOME_STATUSES or not _is_int(serial):
                c.count("bad_outcomes")
                continue
            at = rest[0] if rest and isinstance(rest[0], (int, float)) else None
            error = error if isinstance(error, str) else None
            if not c.tracker.record(node, serial, status, error, result, at):
                c.jobs.late(node, serial, status, error, result, at)  # after its client gave up
        # After the outcomes: a real "failed" in this frame must not be
        # overwritten by what the snapshot implies.
        snapshot = msg.get("snapshot")
        if _is_int(snapshot):
            c.tracker.caught_up(node, snapshot)
        for ended in msg.get("runs") or []:
            self._run_ended(node, ended)
        for event in msg.get("events") or []:
            if isinstance(event, dict):
                c.sinks.send(sink_frame("REPORT", node, event, REPORT_FIELDS))

    def stream(self, sock: FrameSession, msg: Frame) -> None:
        """Continuous data from a node's agent: forwarded to every sink."""
        self.c.sinks.send(sink_frame("STREAM", sock.state["node"], msg.header, STREAM_FIELDS))

    def nack(self, sock: FrameSession, msg: Frame) -> None:
        """A node asks for serials it missed: repairs, or a snapshot if retired."""
        c = self.c
        comm = c.comm
        comm.flush()  # a snapshot "as of sent_serial" must not include unsent messages
        try:
            ranges = parse_nack(msg.header, comm.sent_serial)
        except RequestError as e:
            c.refuse(sock, msg, str(e))
            return
        if not ranges:
            return
        repairs = comm.window.repairs_for(ranges)
        if repairs is None:
            sock.send({"type": "SNAPSHOT", "epoch": comm.epoch, "serial": comm.sent_serial,
                       "snapshot": self.snapshot_for(sock.state["node"], c.reactor.seconds())})
            return
        for datagram in repairs:
            sock.send({"type": "REPAIR"}, datagram)
        c.count("repairs_sent", len(repairs))

    def catalogue(self, sock: FrameSession, msg: Frame) -> None:
        """A node's agent types changed (a module was PUT to it)."""
        name = sock.state["node"]
        record = self.c.nodes.get(name)
        try:
            agents = parse_catalogue(msg.get("agents"))
        except InfoError as e:
            self.c.refuse(sock, msg, str(e))
            return
        if record is not None:
            record.agents = self.c.nodes.intern(agents)
            errors = msg.get("agent_errors")
            record.agent_errors = errors if isinstance(errors, list) else []
            self.c.persistence.record(self.c.comm, {"catalogue": {
                "name": name, "agents": agents, "agent_errors": record.agent_errors}})

    def snapshot_for(self, node: str, now: float) -> dict[str, Any]:
        """The state snapshot for ``node``; what it resumes and does not is
        kept on the node's record (`seer nodes` shows it) and logged."""
        c = self.c
        snapshot = c.comm.model.snapshot_for(node, now)
        resumed = [f"{g['agent']} {g['group']}" for g in snapshot["groups"]
                   if g["run"] == "running"]
        not_resumed = [{"group": f"{g['agent']} {g['group']}", "run": g["run"],
                        "why": g["why"]} for g in snapshot["groups"] if g.get("why")]
        record = c.nodes.get(node)
        if record is not None:
            record.snapshot = {"at": now, "serial": c.comm.sent_serial, "resumed": resumed,
                               "not_resumed": not_resumed}
        c.count("snapshots_sent")
        held = "; ".join(f"{n['group']} ({n['why']})" for n in not_resumed)
        log.info("snapshot for {node}: resumes {resumed}{held}", node=node,
                 resumed=", ".join(resumed) or "no run",
                 held=f"; does not resume {held}" if held else "")
        return snapshot

    def _run_ended(self, node: str, ended: Any) -> None:
        """A group's run ended by itself on ``node``: a snapshot never resumes it."""
        c = self.c
        try:
            agent, group, start = ended["agent"], ended["group"], ended["start"]
            at, why = float(ended["at"]), str(ended.get("why") or "ended")
            if not (isinstance(agent, str) and isinstance(group, str) and _is_int(start)):
                raise TypeError("agent, group and start")
        except (KeyError, TypeError, ValueError):
            c.count("bad_run_ends")
            return
        if c.comm.model.end_run(node, agent, group, start, at, why):
            c.persistence.record(c.comm, {"run_ended": {
                "node": node, "agent": agent, "group": group, "start": start, "at": at,
                "why": why}})
            log.info("{agent} {group} on {node}: run of serial {start} ended ({why})",
                     agent=agent, group=group, node=node, start=start, why=why)

    def table(self, sock: FrameSession, msg: Frame) -> None:
        """A node's agent asks for every node's addresses (address pools)."""
        sock.send({"type": "TABLE", "id": msg.get("id"), "nodes": {
            r.name: {"addresses": r.addresses, "interfaces": r.interfaces, "labels": r.labels,
                     "attributes": r.attributes, "up": r.up}
            for r in self.c.nodes if r.registered}})
