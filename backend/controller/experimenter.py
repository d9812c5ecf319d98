"""The experimenter's requests: what clients and scripts may ask the controller.

COMMAND and SET go to the experiment (through the request pipeline in
:mod:`backend.controller.sending`); EXECUTE and CANCEL run and stop scripts;
NODES, WAIT, AGENTS, GROUPS and STATUS answer from the controller's own
tables; FORGET drops a node gone for good;
SUBSCRIBE makes the client a sink.  PUT and GET are the file relay's.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

from backend.controller.parsing import RequestError, parse_command, parse_set, parse_wait
from backend.net.session import FrameSession
from seer import __version__
from seer.protocol.targets import TargetError
from seer.protocol.wire import Frame


class ExperimenterDesk:
    def __init__(self, controller: Any) -> None:
        self.c = controller
        self._waiters: list[tuple[list[str], Callable[[], None]]] = []

    # -- to the experiment --------------------------------------------------------------

    def command(self, sock: FrameSession, msg: Frame) -> None:
        run = sock.state.get("run")
        scripts = self.c.scripts
        self.c.sender.send(sock, msg, parse_command,
                           on_valid=(lambda m: scripts.note(run, m)) if run else None)

    def set(self, sock: FrameSession, msg: Frame) -> None:
        self.c.sender.send(sock, msg, parse_set)

    # -- scripts ------------------------------------------------------------------------

    def execute(self, sock: FrameSession, msg: Frame) -> None:
        """Save the script and run it as its own Python process.

        Answers ACCEPTED (with the run's id), then OUTPUT frames as the
        script prints, FILE frames for what it left in results/, and EXIT.
        """
        args = msg.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            self.c.refuse(sock, msg, "args must be a list of strings")
            return
        try:
            d = self.c.scripts.execute(sock, msg.get("id"), sock.identity.name,
                                       str(msg.get("name") or "script.py"), msg.blob, args)
        except ValueError as e:
            self.c.refuse(sock, msg, str(e))
            return
        d.addCallbacks(
            lambda run: sock.send({"type": "ACCEPTED", "id": msg.get("id"), "run": run.id,
                                   "folder": str(run.folder)}),
            lambda f: self.c.refuse(sock, msg, f"cannot start the script: {f.getErrorMessage()}"))

    def cancel(self, sock: FrameSession, msg: Frame) -> None:
        """Stop a script this client started (Ctrl-C at `seer run`)."""
        run = self.c.scripts.runs.get(msg.get("run"))
        if run is None or run.client is not sock:
            self.c.refuse(sock, msg, f"no script of yours is running as {msg.get('run')!r}")
            return
        self.c.scripts.cancel(run)
        sock.send({"type": "REPLY", "id": msg.get("id"), "ok": True})

    def stop_group(self, agent: str, group: str, target: Any, origin: str) -> None:
        """STOP an agent group a script left running."""
        message = {"type": "COMMAND", "agent": agent, "group": group, "command": "STOP",
                   "args": {}, "target": target, "origin": origin}
        self.c.comm.stamp(message, None if target == "*" else frozenset(target or []))

    # -- the controller's own tables -------------------------------------------------------

    def nodes(self, sock: FrameSession, msg: Frame) -> None:
        current = self.c.comm.sent_serial
        sock.send({
            "type": "REPLY", "id": msg.get("id"), "epoch": self.c.comm.epoch, "serial": current,
            "nodes": [r.to_json(current) for r in self.c.nodes],
            "never_registered": self.c.nodes.never_registered(),
        })

    def wait(self, sock: FrameSession, msg: Frame) -> None:
        """Reply when the named (default: required) nodes are all up, or at the timeout."""
        nodes = self.c.nodes
        try:
            names, timeout = parse_wait(msg.header, nodes.required(), self.c.default_timeout)
            check_known(names, nodes)
        except RequestError as e:
            self.c.refuse(sock, msg, str(e))
            return
        timer: list[Any] = []

        def reply() -> None:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if timer and timer[0].active():
                timer[0].cancel()
            missing = nodes.missing(names)
            sock.send({
                "type": "REPLY", "id": msg.get("id"), "ok": not missing, "nodes": names,
                "missing": missing,
                "never_registered": [n for n in missing if not (
                    (r := nodes.get(n)) and r.registered)],
            })

        waiter = (names, reply)
        if not nodes.missing(names):
            reply()
            return
        self._waiters.append(waiter)
        timer.append(self.c.reactor.callLater(timeout, reply))

    def node_came_up(self) -> None:
        """Answer the WAITs that a registration satisfied."""
        for names, reply in list(self._waiters):
            if not self.c.nodes.missing(names):
                reply()

    def stop(self) -> None:
        """Controller shutdown: answer every WAIT now."""
        for _, reply in list(self._waiters):
            reply()

    def groups(self, sock: FrameSession, msg: Frame) -> None:
        """Each node's agent groups as the controller's model has them now:
        variables and run state (running, stopped, finished and why)."""
        try:
            _, names = self.c.comm.resolve(msg.get("target"))
        except TargetError as e:
            self.c.refuse(sock, msg, str(e))
            return
        now = self.c.reactor.seconds()
        model = self.c.comm.model
        sock.send({"type": "REPLY", "id": msg.get("id"), "groups": {
            name: model.snapshot_for(name, now)["groups"] for name in names}})

    def jobs(self, sock: FrameSession, msg: Frame) -> None:
        """The latest jobs, newest first: time, sender, agent/group, command,
        target and outcome counts."""
        limit = msg.get("limit", 20)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            self.c.refuse(sock, msg, f"limit must be a count from 1 to 1000, got {limit!r}")
            return
        sock.send({"type": "REPLY", "id": msg.get("id"), "jobs": self.c.jobs.recent(limit)})

    def job(self, sock: FrameSession, msg: Frame) -> None:
        """One job with each node's outcome, late ones included."""
        wanted = msg.get("job")
        job = self.c.jobs.get(wanted) if isinstance(wanted, int) and \
            not isinstance(wanted, bool) else None
        if job is None:
            known = self.c.jobs.known()
            kept = f"jobs {known[0]} to {known[1]} are kept" if known else "no job is kept yet"
            self.c.refuse(sock, msg, f"no job {wanted!r} ({kept}; `seer jobs` lists them)")
            return
        sock.send({"type": "REPLY", "id": msg.get("id"), "job": job})

    def forget(self, sock: FrameSession, msg: Frame) -> None:
        """Forget a node gone for good: no longer targeted or named in outcomes."""
        name = msg.get("node")
        record = self.c.nodes.get(name) if isinstance(name, str) else None
        if record is None:
            known = ", ".join(r.name for r in self.c.nodes) or "none"
            self.c.refuse(sock, msg, f"no node {name!r} is known (known: {known})")
            return
        if record.up:
            self.c.refuse(sock, msg, f"node {name} is up; stop its daemon before forgetting it")
            return
        self.c.nodes.forget(name)
        self.c.persistence.record(self.c.comm, {"forgotten": name})
        sock.send({"type": "REPLY", "id": msg.get("id"), "ok": True, "forgotten": name})

    def agents(self, sock: FrameSession, msg: Frame) -> None:
        agents: dict[str, Any] = {}
        for record in self.c.nodes:
            for agent_type, description in record.agents.items():
                entry = agents.setdefault(agent_type, dict(description, nodes=[]))
                entry["nodes"].append(record.name)
        errors = {r.name: r.agent_errors for r in self.c.nodes if r.agent_errors}
        sock.send({"type": "REPLY", "id": msg.get("id"), "agents": agents, "errors": errors})

    def subscribe(self, sock: FrameSession, msg: Frame) -> None:
        self.c.sinks.subscribe(sock)
        sock.send({"type": "REPLY", "id": msg.get("id"), "ok": True})

    def status(self, sock: FrameSession, msg: Frame) -> None:
        sock.send(dict(self.status_now(), type="REPLY", id=msg.get("id")))

    def status_now(self) -> dict[str, Any]:
        c = self.c
        comm = c.comm
        node_sessions = c.node_sessions.values()
        return {
            "controller": c.name, "version": __version__,
            "epoch": comm.epoch, "serial": comm.sent_serial,
            "window": len(comm.window), "oldest": comm.window.oldest,
            "pending": len(c.tracker),
            "datagrams": {"messages": comm.message_datagrams, "pings": comm.ping_datagrams,
                          "bytes": comm.sender.bytes},
            # TLS frame bytes with the nodes now connected (keep-alive footprint).
            "node_tls_bytes": {"in": sum(s.bytes_in for s in node_sessions),
                               "out": sum(s.bytes_out for s in node_sessions)},
            "nodes": [{"name": r.name, "up": r.up, "serial": r.serial, "state": r.state,
                       "unreachable_since": r.unreachable_since, "snapshot": r.snapshot,
                       "lag": r.lag(comm.sent_serial)} for r in c.nodes],
            "counters": dict(c.counters),
            # Where Prometheus scrapes the experiment's readings (None: no HTTP port).
            "metrics": c.stats.metrics_url,
            # The web page, with its token (None: no HTTP port).
            "dashboard": c.dashboard.url if c.dashboard is not None else None,
        }


def check_known(names: list[str], nodes: Any) -> None:
    """With a node file the experiment's nodes are known: a name outside it
    (and never registered) is a typo, said at once rather than waited out.
    Without one any name may still register, so it is waited for."""
    if not any(record.expected for record in nodes):
        return
    unknown = [name for name in names if name not in nodes]
    if unknown:
        known = sorted(record.name for record in nodes)
        hints = [f"{name!r} (nearest: {near[0]!r})" if (near := difflib.get_close_matches(
            name, known, n=1, cutoff=0.4)) else repr(name) for name in unknown]
        raise RequestError(f"no such node: {', '.join(hints)}; the experiment's nodes are "
                           f"{', '.join(known[:20])}{' ...' if len(known) > 20 else ''}")
