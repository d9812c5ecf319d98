"""backend.controller -- SEER's network controller core.

One router, several thin transports (the shape of twisted.names): the
mutual-TLS listener delivers frames from daemons and clients to
:meth:`Controller.frameReceived`, which checks the peer's role and calls the
handler for the frame's type (SEER's ``handleCOMMAND``, ``handleSET`` ...).
Messages for the experiment leave through :class:`CommWrapper` as signed
multicast datagrams; everything else goes back over TLS.

Duties on timers (all on the injected reactor's clock): ``pingExperiment``
(idle nodes notice what they missed), ``retireSerials`` (two minutes),
checkpoints, and ``doUpdates`` (status to sinks).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from twisted.application import service
from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.controller.checkpoint import CheckpointStore, Journal, JournalRecord, read_journals
from backend.controller.comm import CommWrapper, MessageTooLarge
from backend.net.multicast import MulticastSender, check_group, listen_sender, resolve_interface
from backend.controller.nodetable import InfoError, NodeTable, parse_catalogue, parse_info
from backend.controller.outcomes import OutcomeTracker
from backend.runtime.files import BlobStore
from backend.controller.parsing import (
    RequestError,
    parse_command,
    parse_get,
    parse_nack,
    parse_put,
    parse_set,
    parse_wait,
)
from backend.controller.retransmit import RetransmitWindow
from backend.controller.scripts import ScriptRunner
from backend.net.session import FrameSession, SessionFactory
from backend.controller.statemodel import StateModel
from seer import __version__
from seer.protocol.certs import CertDirectory
from seer.config import parse_hostport
from seer.protocol.targets import TargetError, parse_target
from backend.net.tls import server_options
from seer.protocol.tls import Identity
from seer.protocol.vartypes import Var, VarError, convert_vars
from seer.protocol.datagrams import SigningKeys, batch_payload, encode_batch
from seer.protocol.wire import Frame, WireError, dumps, encode_frame

__all__ = ["Controller", "CommWrapper", "returnNone"]

#: The most serials one NACK may ask for; more and a snapshot is cheaper.
MAX_REPAIR = 5000


OUTCOME_STATUSES = ("applied", "failed", "skipped")
#: What a node's report or stream may pass on to sinks -- never an "id",
#: which a client would take for the answer to one of its requests.
REPORT_FIELDS = ("agent", "group", "event", "data", "time")
STREAM_FIELDS = ("agent", "group", "name", "data", "time")


def _sink_frame(kind: str, node: str, source: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    frame = {k: source[k] for k in fields if k in source}
    frame.update(type=kind, node=node)
    return frame


def returnNone(*args: Any) -> None:
    """SEER's do-nothing callback."""
    return None


class Controller(service.MultiService):
    """The controller service: TLS router, multicast sender, reliability duties."""

    log = Logger()

    def __init__(
        self,
        multicastaddr: tuple[str, int] | str,
        name: str = "controller",
        cafile: str | Path | None = None,
        nodefile: list[str] | None = None,
        required: list[str] | None = None,
        *,
        reactor: Any,
        certs: str | Path = "certs",
        listen: tuple[str, int] | str = ("127.0.0.1", 7700),
        interface: str = "127.0.0.1",
        state_dir: str | Path = "state/controller",
        ping_interval: float = 1.0,
        retire_after: float = 120.0,
        checkpoint_interval: float = 5.0,
        update_interval: float = 1.0,
        default_timeout: float = 10.0,
        blocking: Callable[..., Deferred] | None = None,
    ) -> None:
        super().__init__()
        self.setName(name)
        self.reactor = reactor
        self.clock = reactor
        if isinstance(multicastaddr, str):
            multicastaddr = parse_hostport(multicastaddr, "multicast group")
        self.multicastaddr = (check_group(multicastaddr[0]), multicastaddr[1])
        self.listen = parse_hostport(listen, "listen address") if isinstance(listen, str) else listen
        self.interface = interface
        self.certs = CertDirectory(certs)
        self.cafile = Path(cafile) if cafile else self.certs.ca.cert
        self.nodes = NodeTable(nodefile or [], required or [])
        self.store = CheckpointStore(state_dir)
        self.blobs = BlobStore(Path(state_dir) / "blobs")
        #: PUT contents kept in memory until the checkpoint after their PUT.
        self._blob_cache: dict[str, bytes] = {}
        #: GET serial -> (client session, request id) for FILE frames.
        self._file_routes: dict[int, tuple[FrameSession, Any]] = {}
        self.ping_interval = ping_interval
        self.retire_after = retire_after
        self.checkpoint_interval = checkpoint_interval
        self.update_interval = update_interval
        self.default_timeout = default_timeout
        self._blocking = blocking or (
            lambda f, *a: deferToThreadPool(reactor, reactor.getThreadPool(), f, *a)
        )
        self.tracker = OutcomeTracker(reactor, self._why_unconfirmed)
        self.comm: CommWrapper | None = None
        self.node_sessions: dict[str, FrameSession] = {}
        self.client_sessions: set[FrameSession] = set()
        self.counters: dict[str, int] = {}
        self.port: Any = None
        self.ready: Deferred = Deferred()
        self.scripts: ScriptRunner | None = None
        self._unix_port: Any = None
        self._socket_folder: Path | None = None
        self._sender_port: Any = None
        self._loops: list[task.LoopingCall] = []
        self._waiters: list[tuple[list[str], Callable[[], None]]] = []
        self._checkpoint_seq = 0
        self._checkpoint_running: Deferred | None = None
        self._checkpointed: tuple[int, int] | None = None
        self._registrations = 0
        self._last_update: Any = None
        self._handlers = {
            ("experimenter", "COMMAND"): self.handleCOMMAND,
            ("experimenter", "SET"): self.handleSET,
            ("experimenter", "EXECUTE"): self.handleEXECUTE,
            ("experimenter", "GET"): self.handleGET,
            ("experimenter", "PUT"): self.handlePUT,
            ("experimenter", "NODES"): self.handleNODES,
            ("experimenter", "WAIT"): self.handleWAIT,
            ("experimenter", "AGENTS"): self.handleAGENTS,
            ("experimenter", "SUBSCRIBE"): self.handleSUBSCRIBE,
            ("experimenter", "STATUS"): self.handleSTATUS,
            ("experimenter", "CANCEL"): self.handleCANCEL,
            ("node", "INFO"): self.handleINFO,
            ("node", "REPORT"): self.handleREPORT,
            ("node", "STREAM"): self.handleSTREAM,
            ("node", "NACK"): self.handleNACK,
            ("node", "TABLE"): self.handleTABLE,
            ("node", "FETCH"): self.handleFETCH,
            ("node", "FILE"): self.handleFILE,
            ("node", "CATALOGUE"): self.handleCATALOGUE,
        }

    # -- life cycle ------------------------------------------------------------------

    def startService(self) -> None:
        # What can fail for a user's mistake is checked before anything is
        # created, so a failed start leaves no trace.
        tls = server_options(self.cafile, self.certs.require(self.certs.controller, "controller"))
        interface_address = resolve_interface(self.interface)
        epoch, serial, model, recent = self._restore()
        self._checkpoint_seq = self.store.next_seq()
        journal = Journal(self.store.directory, self._checkpoint_seq)
        sender = MulticastSender(self.multicastaddr[0], self.multicastaddr[1], interface_address)
        self._sender_port = listen_sender(self.reactor, sender)
        keys = SigningKeys.generate()
        self.comm = CommWrapper(
            self.name, self.multicastaddr, self,
            sender=sender, keys=keys, clock=self.clock, epoch=epoch, serial=serial,
            model=model, window=self._window_from(recent, keys, epoch), journal=journal,
        )
        replayed = sum(len(r.messages) for r in recent)
        endpoint = endpoints.SSL4ServerEndpoint(
            self.reactor, self.listen[1], tls, interface=self.listen[0]
        )
        #: Fires once the TLS listener is up; fails if it cannot listen.
        self.ready = endpoint.listen(SessionFactory(self)).addCallback(self._listening)
        # Scripts run by EXECUTE talk back through a Unix socket only this
        # machine's root can open (mode 0600 in a 0700 folder).
        self._socket_folder = Path(tempfile.mkdtemp(prefix="seer-controller-"))
        socket_path = self._socket_folder / "control.sock"
        self.scripts = ScriptRunner(self.reactor, self.store.directory / "runs", socket_path,
                                    self._stop_group, self._blocking)
        self._unix_port = self.reactor.listenUNIX(str(socket_path), SessionFactory(self, tls=False),
                                                  mode=0o600)
        for interval, duty in (
            (self.ping_interval, self.pingExperiment),
            (min(10.0, self.retire_after / 4), self.comm.retireSerials),
            (self.checkpoint_interval, self.checkpoint),
            (self.update_interval, self.doUpdates),
        ):
            loop = task.LoopingCall(self._guarded, duty)
            loop.clock = self.clock
            loop.start(interval, now=False)
            self._loops.append(loop)
        super().startService()
        self.log.info(
            "controller {name} up: epoch {epoch}, continuing after serial {serial} "
            "({replayed} replayed from the journal); multicast {group}:{port} on {iface}",
            name=self.name, epoch=epoch, serial=serial, replayed=replayed,
            group=self.multicastaddr[0], port=self.multicastaddr[1], iface=interface_address,
        )
        self.checkpoint()

    def _guarded(self, duty: Callable[[], Any]) -> Any:
        """Run a periodic duty; an error is logged and the next run still comes
        (a LoopingCall whose function raises stops for good)."""
        try:
            d = maybeDeferred(duty)
        except Exception:  # maybeDeferred catches; this is belt and braces
            self.log.failure("periodic {duty} failed", duty=duty.__name__)
            return None
        return d.addErrback(lambda f: self.log.failure("periodic {duty} failed", f,
                                                       duty=duty.__name__))

    def _listening(self, port: Any) -> Any:
        self.port = port
        address = port.getHost()
        self.log.info("listening for TLS on {host}:{port}", host=address.host, port=address.port)
        return port

    def stopService(self) -> Deferred:
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        if self.comm is None:
            return succeed(None)
        # Send what is queued first: its on_sent would arm new outcome timers.
        self.comm.stop()
        self.tracker.cancel_all()
        if self.scripts is not None:
            self.scripts.stop_all()
        for _, reply in list(self._waiters):
            reply()
        for session in list(self.node_sessions.values()) + list(self.client_sessions):
            session.close()
        stopping = [self.checkpoint(final=True)]
        if self.port is not None:
            stopping.append(maybeDeferred(self.port.stopListening))
        if self._sender_port is not None:
            stopping.append(maybeDeferred(self._sender_port.stopListening))
        if self._unix_port is not None:
            stopping.append(maybeDeferred(self._unix_port.stopListening))
            stopping[-1].addBoth(lambda _: shutil.rmtree(self._socket_folder, ignore_errors=True))
        d = gatherResults(stopping, consumeErrors=True)
        d.addBoth(lambda _: self.comm.journal.close())
        return d

    # -- checkpoint and restart ------------------------------------------------------

    def _restore(self) -> tuple[int, int, StateModel, list[JournalRecord]]:
        """Epoch, serial, model and the journal records replayed after the checkpoint."""
        newest = self.store.newest()
        if newest is None:
            epoch = random.SystemRandom().randrange(1, 2**63)
            self.log.info("no checkpoint in {dir}: new epoch {epoch}",
                          dir=str(self.store.directory), epoch=epoch)
            return epoch, 0, StateModel(), []
        seq, state = newest
        epoch, serial = state["epoch"], state["serial"]
        model = StateModel.from_json(state["model"])
        self.nodes.restore(state["nodes"])
        replayed = []
        for record in read_journals(self.store.directory, seq):
            if record.epoch != epoch or record.last_serial <= serial:
                continue
            for offset, message in enumerate(record.messages):
                if record.serial + offset > serial:
                    target = message.get("target")
                    model.apply(record.serial + offset, message,
                                None if target == "*" else frozenset(target or []),
                                record.sent_at)
            serial = record.last_serial
            replayed.append(record)
        self.log.info("restored checkpoint {seq}: epoch {epoch}, serial {serial}",
                      seq=seq, epoch=epoch, serial=state["serial"])
        return epoch, serial, model, replayed

    def _window_from(self, records: list[JournalRecord], keys: SigningKeys,
                     epoch: int) -> RetransmitWindow:
        """Replayed datagrams young enough to repair, signed with this run's keys."""
        window = RetransmitWindow(self.retire_after)
        now = self.clock.seconds()
        for record in records:
            if now - record.sent_at <= self.retire_after:
                payload = batch_payload([dumps(m) for m in record.messages])
                datagram = encode_batch(keys, epoch, record.serial, len(record.messages), payload)
                window.add(record.serial, record.last_serial, datagram, record.sent_at)
        return window

    def checkpoint(self, final: bool = False) -> Deferred:
        """Write epoch, serial, node table and state model; rotate the journal."""
        if self.comm is None:
            return succeed(None)
        if self._checkpoint_running is not None and not final:
            return succeed(None)
        self.comm.flush()
        if self.comm.held:
            # The model already has messages the journal does not: a
            # checkpoint now would not match any serial.  Wait.
            return succeed(None)
        # Only serials and registrations need persisting; acks come back anew.
        fingerprint = (self.comm.sent_serial, self._registrations)
        if fingerprint == self._checkpointed and not final:
            return succeed(None)
        self._checkpointed = fingerprint
        state = {
            "epoch": self.comm.epoch,
            "serial": self.comm.sent_serial,
            "nodes": self.nodes.to_json(),
            "model": self.comm.model.to_json(),
        }
        seq = self._checkpoint_seq
        self._checkpoint_seq += 1
        old_journal = self.comm.journal
        if not final:
            self.comm.journal = Journal(self.store.directory, self._checkpoint_seq)
        now = self.clock.seconds()
        referenced = self.comm.model.referenced_blobs()

        def write() -> None:
            self.store.write(seq, state, now)
            self.store.prune()
            self.blobs.prune(referenced, older_than=now - self.retire_after)

        def done(result: Any) -> Any:
            self._checkpoint_running = None
            if not final and old_journal is not None:
                old_journal.close()
            if isinstance(result, Failure):
                self.log.failure("checkpoint {seq} failed", result, seq=seq)
            return None

        previous = self._checkpoint_running or succeed(None)
        d = previous.addBoth(lambda _: self._blocking(write)).addBoth(done)
        self._checkpoint_running = d if not d.called else None
        return d

    # -- sessions (router interface) -------------------------------------------------

    def sessionOpened(self, session: FrameSession) -> None:
        role = session.identity.role
        if role == "experimenter":
            self.client_sessions.add(session)
        elif role != "node":
            self._count("refused_role")
            session.send({"type": "ERROR", "error": f"a {role} certificate cannot connect here"})
            session.close()

    def helloReceived(self, session: FrameSession, frame: Frame) -> Identity | None:
        """A script on this machine presents its run's token."""
        run = self.scripts.by_token(frame.get("token")) if self.scripts else None
        if run is None:
            self._count("refused_tokens")
            return None
        session.state["run"] = run.id
        return Identity(run.experimenter, "experimenter")

    def sessionClosed(self, session: FrameSession, reason: Failure) -> None:
        self.client_sessions.discard(session)
        if self.scripts is not None:
            self.scripts.cancel_for(session)
        name = session.state.get("node")
        if name and self.node_sessions.get(name) is session:
            del self.node_sessions[name]
            self.comm.nodeDown(name)

    def nodeDown(self, name: str) -> None:
        self.nodes.down(name, self.clock.seconds())
        self.log.info("node {node} is down", node=name)

    def badInput(self, session: FrameSession, error: WireError) -> None:
        self._count(f"bad_frames_{error.reason}")
        self.log.warn("bad frame from {session}: {error}", session=session, error=str(error))

    def frameReceived(self, session: FrameSession, frame: Frame) -> None:
        role = session.identity.role
        handler = self._handlers.get((role, frame.type))
        if handler is None:
            self._count("refused_frames")
            allowed = sorted(t for r, t in self._handlers if r == role)
            session.send({
                "type": "ERROR", "id": frame.get("id"),
                "error": f"a {role} may not send {frame.type} (allowed: {', '.join(allowed)})",
            })
            return
        if role == "node" and frame.type != "INFO" and "node" not in session.state:
            session.send({"type": "ERROR", "error": f"send INFO before {frame.type}"})
            return
        handler(session, frame)

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _error(self, session: FrameSession, frame: Frame, message: str) -> None:
        self._count("request_errors")
        session.send({"type": "ERROR", "id": frame.get("id"), "error": message})

    # -- experimenter requests ----------------------------------------------------------

    def handleCOMMAND(self, sock: FrameSession, msg: Frame) -> None:
        """Apply a serial number and send to experiment nodes."""
        run = sock.state.get("run")
        self._send_request(sock, msg, parse_command,
                           on_valid=(lambda m: self.scripts.note(run, m)) if run else None)

    def handleSET(self, sock: FrameSession, msg: Frame) -> None:
        """Check variables against the agent catalogue, then send like a COMMAND."""
        self._send_request(sock, msg, parse_set)

    def _send_request(
        self,
        sock: FrameSession,
        msg: Frame,
        parse: Callable,
        on_valid: Callable[[dict[str, Any]], None] | None = None,
        on_sent: Callable[[int], None] | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        """Check a client's request, stamp and send it, and answer ACCEPTED
        then RESULT.  The hooks run once it is valid, once it is sent, and
        once every outcome is in."""
        try:
            request = parse(msg.header, self.default_timeout, self.clock.seconds())
            target = parse_target(request.target)
            nodes = target.resolve(self.nodes)
            self._check_catalogue(request.message, nodes)
        except (RequestError, TargetError, VarError) as e:
            self._error(sock, msg, str(e))
            return
        message = dict(request.message, target=target.wire(nodes), origin=sock.identity.name)
        wait = request.timeout + max(0.0, (request.message.get("time") or 0) - self.clock.seconds())
        request_id = msg.get("id")

        def completed(serial: int, outcomes: dict[str, Any]) -> None:
            if on_done is not None:
                on_done(serial)
            sock.send({"type": "RESULT", "id": request_id, "serial": serial, "outcomes": outcomes})

        def sent(serial: int) -> None:
            if on_sent is not None:
                on_sent(serial)
            sock.send({
                "type": "ACCEPTED", "id": request_id, "serial": serial, "nodes": nodes,
                "down": self.nodes.missing(nodes),
            })
            self.tracker.expect(serial, nodes, wait, completed,
                                is_state=self.comm.model.is_state(message),
                                due=message.get("time"))

        try:
            encoded = self.comm.check_size(message)
        except MessageTooLarge as e:
            self._error(sock, msg, str(e))
            return
        if on_valid is not None:
            on_valid(message)
        self.comm.stamp(message, None if target.is_all else frozenset(nodes), sent, encoded)

    def _check_catalogue(self, message: dict[str, Any], nodes: list[str]) -> None:
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

    def handleEXECUTE(self, sock: FrameSession, msg: Frame) -> None:
        """Save the file to disk and then run it as its own python process.

        Answers ACCEPTED (with the run's id), then OUTPUT frames as the
        script prints, FILE frames for what it left in results/, and EXIT.
        """
        args = msg.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            self._error(sock, msg, "args must be a list of strings")
            return
        try:
            d = self.scripts.execute(sock, msg.get("id"), sock.identity.name,
                                     str(msg.get("name") or "script.py"), msg.blob, args)
        except ValueError as e:
            self._error(sock, msg, str(e))
            return
        d.addCallbacks(
            lambda run: sock.send({"type": "ACCEPTED", "id": msg.get("id"), "run": run.id,
                                   "folder": str(run.folder)}),
            lambda f: self._error(sock, msg, f"cannot start the script: {f.getErrorMessage()}"))

    def handleCANCEL(self, sock: FrameSession, msg: Frame) -> None:
        """Stop a script this client started (Ctrl-C at `seer run`)."""
        run = self.scripts.runs.get(msg.get("run"))
        if run is None or run.client is not sock:
            self._error(sock, msg, f"no script of yours is running as {msg.get('run')!r}")
            return
        self.scripts.cancel(run)
        sock.send({"type": "REPLY", "id": msg.get("id"), "ok": True})

    def _stop_group(self, agent: str, group: str, target: Any, origin: str) -> None:
        """STOP an agent group a script left running."""
        message = {"type": "COMMAND", "agent": agent, "group": group, "command": "STOP",
                   "args": {}, "target": target, "origin": origin}
        self.comm.stamp(message, None if target == "*" else frozenset(target or []))

    def handleGET(self, sock: FrameSession, msg: Frame) -> None:
        """Bring a file back from each targeted node; FILE frames then RESULT."""
        request_id = msg.get("id")

        def route(serial: int) -> None:
            self._file_routes[serial] = (sock, request_id)

        self._send_request(sock, msg, parse_get, on_sent=route,
                           on_done=lambda serial: self._file_routes.pop(serial, None))

    def handlePUT(self, sock: FrameSession, msg: Frame) -> None:
        """Send a file (or an agent module) to the targeted nodes.

        The content is kept here by its SHA-256; the multicast message names
        the digest and each node FETCHes the content over TLS.
        """
        def keep(message: dict[str, Any]) -> None:
            digest = message["sha256"]
            self._blob_cache[digest] = msg.blob
            self._blocking(self.blobs.put, msg.blob).addCallbacks(
                lambda _: self._blob_cache.pop(digest, None),
                lambda f: self.log.failure("storing a PUT's content", f))

        self._send_request(
            sock, msg, lambda h, t, now: parse_put(h, msg.blob, t, now), on_valid=keep)

    def handleNODES(self, sock: FrameSession, msg: Frame) -> None:
        current = self.comm.sent_serial
        sock.send({
            "type": "REPLY", "id": msg.get("id"), "epoch": self.comm.epoch, "serial": current,
            "nodes": [r.to_json(current) for r in self.nodes],
            "never_registered": self.nodes.never_registered(),
        })

    def handleWAIT(self, sock: FrameSession, msg: Frame) -> None:
        """Reply when the named (default: required) nodes are all up, or at the timeout."""
        try:
            names, timeout = parse_wait(msg.header, self.nodes.required(), self.default_timeout)
        except RequestError as e:
            self._error(sock, msg, str(e))
            return
        timer: list[Any] = []

        def reply() -> None:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if timer and timer[0].active():
                timer[0].cancel()
            missing = self.nodes.missing(names)
            sock.send({
                "type": "REPLY", "id": msg.get("id"), "ok": not missing, "nodes": names,
                "missing": missing,
                "never_registered": [n for n in missing if not (
                    (r := self.nodes.get(n)) and r.registered)],
            })

        waiter = (names, reply)
        if not self.nodes.missing(names):
            reply()
            return
        self._waiters.append(waiter)
        timer.append(self.clock.callLater(timeout, reply))

    def _check_waiters(self) -> None:
        for names, reply in list(self._waiters):
            if not self.nodes.missing(names):
                reply()

    def handleAGENTS(self, sock: FrameSession, msg: Frame) -> None:
        agents: dict[str, Any] = {}
        for record in self.nodes:
            for agent_type, description in record.agents.items():
                entry = agents.setdefault(agent_type, dict(description, nodes=[]))
                entry["nodes"].append(record.name)
        errors = {r.name: r.agent_errors for r in self.nodes if r.agent_errors}
        sock.send({"type": "REPLY", "id": msg.get("id"), "agents": agents, "errors": errors})

    def handleSUBSCRIBE(self, sock: FrameSession, msg: Frame) -> None:
        sock.state["sink"] = True
        sock.send({"type": "REPLY", "id": msg.get("id"), "ok": True})

    def handleSTATUS(self, sock: FrameSession, msg: Frame) -> None:
        sock.send(dict(self._status(), type="REPLY", id=msg.get("id")))

    def _status(self) -> dict[str, Any]:
        comm = self.comm
        return {
            "controller": self.name, "version": __version__,
            "epoch": comm.epoch, "serial": comm.sent_serial,
            "window": len(comm.window), "oldest": comm.window.oldest,
            "pending": len(self.tracker),
            "datagrams": {"messages": comm.message_datagrams, "pings": comm.ping_datagrams,
                          "bytes": comm.sender.bytes},
            # TLS frame bytes with the nodes now connected (keep-alive footprint).
            "node_tls_bytes": {"in": sum(s.bytes_in for s in self.node_sessions.values()),
                               "out": sum(s.bytes_out for s in self.node_sessions.values())},
            "nodes": [{"name": r.name, "up": r.up, "serial": r.serial,
                       "lag": max(0, comm.sent_serial - r.serial) if r.registered else None}
                      for r in self.nodes],
            "counters": dict(self.counters),
        }

    # -- node frames -------------------------------------------------------------------

    def handleINFO(self, sock: FrameSession, msg: Frame) -> None:
        """A daemon registers (or re-registers) and is welcomed with the keys."""
        try:
            info = parse_info(msg.header)
        except InfoError as e:
            self._error(sock, msg, str(e))
            sock.close()
            return
        if info["name"] != sock.identity.name:
            self._count("refused_impersonation")
            self._error(sock, msg, f"this certificate is for node {sock.identity.name!r}, "
                                   f"not {info['name']!r}")
            sock.close()
            return
        name = info["name"]
        previous = self.node_sessions.get(name)
        if previous is not None and previous is not sock:
            self.log.info("node {node} reconnected; closing its old connection", node=name)
            previous.state.pop("node", None)
            previous.close()
        self.node_sessions[name] = sock
        sock.state["node"] = name
        record = self.nodes.register(info, self.clock.seconds(), sock.peer)
        self._registrations += 1
        comm = self.comm
        comm.flush()
        current = comm.sent_serial
        same_epoch = info["epoch"] == comm.epoch
        welcome: dict[str, Any] = {
            "type": "WELCOME", "epoch": comm.epoch, "serial": current,
            "keys": comm.keys.verifying().to_json(), "ping_interval": self.ping_interval,
            "controller": self.name,
        }
        if same_epoch and info["serial"] <= current:
            record.serial = info["serial"]
            comm.checkSerial(name, info["serial"])
            if info["serial"] < current and not comm.can_repair(info["serial"] + 1, current):
                welcome["snapshot"] = comm.model.snapshot_for(name, self.clock.seconds())
        else:
            # A new daemon, another epoch, or a node ahead of us: start it
            # afresh from the state as of now.
            welcome["reset"] = True
            welcome["snapshot"] = comm.model.snapshot_for(name, self.clock.seconds())
            record.serial = current
        if "snapshot" in welcome:
            self._count("snapshots_sent")
        sock.send(welcome)
        self.log.info("node {node} registered from {peer} (its serial {theirs}, ours {ours}{how})",
                      node=name, peer=sock.peer, theirs=info["serial"], ours=current,
                      how=", snapshot" if "snapshot" in welcome else "")
        self._check_waiters()

    def handleREPORT(self, sock: FrameSession, msg: Frame) -> None:
        """Acknowledgements, per-message outcomes and agent events from a node."""
        node = sock.state["node"]
        record = self.nodes.get(node)
        if record is not None:
            record.last_seen = self.clock.seconds()
        ack = msg.get("ack")
        if isinstance(ack, int) and not isinstance(ack, bool):
            self.comm.checkSerial(node, ack)
            if record is not None:
                record.serial = self.comm.acked.get(node, record.serial)
        stats = msg.get("stats")
        if isinstance(stats, dict) and record is not None:
            record.stats = stats
        for outcome in msg.get("outcomes") or []:
            try:
                serial, status, error, result, *rest = outcome
            except (TypeError, ValueError):
                self._count("bad_outcomes")
                continue
            if status not in OUTCOME_STATUSES or not isinstance(serial, int):
                self._count("bad_outcomes")
                continue
            at = rest[0] if rest and isinstance(rest[0], (int, float)) else None
            self.tracker.record(node, serial, status, error if isinstance(error, str) else None,
                                result, at)
        # After the outcomes: a real "failed" in this frame must not be
        # overwritten by what the snapshot implies.
        snapshot = msg.get("snapshot")
        if isinstance(snapshot, int) and not isinstance(snapshot, bool):
            self.tracker.caught_up(node, snapshot)
        for event in msg.get("events") or []:
            if isinstance(event, dict):
                self.send_to_sinks(_sink_frame("REPORT", node, event, REPORT_FIELDS))

    def handleSTREAM(self, sock: FrameSession, msg: Frame) -> None:
        """Continuous data from a node's agent: forwarded to every sink."""
        self.send_to_sinks(_sink_frame("STREAM", sock.state["node"], msg.header, STREAM_FIELDS))

    def handleNACK(self, sock: FrameSession, msg: Frame) -> None:
        """A node asks for serials it missed: repairs, or a snapshot if retired."""
        comm = self.comm
        comm.flush()  # a snapshot "as of sent_serial" must not include unsent messages
        node = sock.state["node"]
        try:
            ranges = parse_nack(msg.header, comm.sent_serial)
        except RequestError as e:
            self._error(sock, msg, str(e))
            return
        wanted = sum(hi - lo + 1 for lo, hi in ranges)
        if not ranges:
            return
        if wanted > MAX_REPAIR or not all(comm.can_repair(lo, hi) for lo, hi in ranges):
            self._count("snapshots_sent")
            sock.send({"type": "SNAPSHOT", "epoch": comm.epoch, "serial": comm.sent_serial,
                       "snapshot": comm.model.snapshot_for(node, self.clock.seconds())})
            return
        sent: set[int] = set()
        for lo, hi in ranges:
            for serial in range(lo, hi + 1):
                datagram = comm.window.get(serial)
                if datagram is not None and id(datagram) not in sent:
                    sent.add(id(datagram))
                    sock.send({"type": "REPAIR"}, datagram)
        self._count("repairs_sent", len(sent))

    def handleFETCH(self, sock: FrameSession, msg: Frame) -> None:
        """A node fetches the content of a PUT by its SHA-256."""
        digest = msg.get("sha256")
        cached = self._blob_cache.get(digest) if isinstance(digest, str) else None
        d = succeed(cached) if cached is not None else self._blocking(self.blobs.get, digest)

        def answer(data: bytes | None) -> None:
            if data is None:
                self._error(sock, msg, f"no content with SHA-256 {digest!r} here")
            else:
                sock.send({"type": "BLOB", "id": msg.get("id"), "sha256": digest}, data)

        d.addCallback(answer)

    def handleFILE(self, sock: FrameSession, msg: Frame) -> None:
        """A chunk of a file a node sends back for a GET: on to the client."""
        route = self._file_routes.get(msg.get("serial"))
        if route is None:
            self._count("files_without_request")
            return
        client, request_id = route
        header = {k: msg.get(k) for k in ("name", "size", "sha256", "offset", "last")}
        client.send(dict(header, type="FILE", id=request_id, node=sock.state["node"]), msg.blob)

    def handleCATALOGUE(self, sock: FrameSession, msg: Frame) -> None:
        """A node's agent types changed (a module was PUT to it)."""
        record = self.nodes.get(sock.state["node"])
        try:
            agents = parse_catalogue(msg.get("agents"))
        except InfoError as e:
            self._error(sock, msg, str(e))
            return
        if record is not None:
            record.agents = agents
            errors = msg.get("agent_errors")
            record.agent_errors = errors if isinstance(errors, list) else []

    def handleTABLE(self, sock: FrameSession, msg: Frame) -> None:
        """A node's agent asks for every node's addresses (address pools)."""
        sock.send({"type": "TABLE", "id": msg.get("id"), "nodes": {
            r.name: {"addresses": r.addresses, "interfaces": r.interfaces, "labels": r.labels,
                     "attributes": r.attributes, "up": r.up}
            for r in self.nodes if r.registered}})

    # -- sinks and periodic duties -----------------------------------------------------

    def send_to_sinks(self, header: dict[str, Any]) -> int:
        frame = encode_frame(header)
        count = 0
        for session in self.client_sessions:
            if session.state.get("sink"):
                session.send_raw(frame)
                count += 1
        for name, session in self.node_sessions.items():
            record = self.nodes.get(name)
            if record and str(record.attributes.get("sink", "")).lower() in ("1", "true", "yes"):
                session.send_raw(frame)
                count += 1
        return count

    def pingExperiment(self) -> None:
        """Ping the experiment with the current serial unless traffic already did."""
        comm = self.comm
        if comm.last_sent_at is None or self.clock.seconds() - comm.last_sent_at >= self.ping_interval * 0.9:
            comm.ping()

    def doUpdates(self) -> None:
        """Send a status update to sinks when something changed."""
        if not any(s.state.get("sink") for s in self.client_sessions):
            return
        status = self._status()
        summary = (status["serial"], tuple((n["name"], n["up"], n["serial"]) for n in status["nodes"]))
        if summary != self._last_update:
            self._last_update = summary
            self.send_to_sinks(dict(status, type="STATUS"))

    def _why_unconfirmed(self, node: str) -> str:
        record = self.nodes.get(node)
        if record is None or not record.registered:
            return "node never registered"
        if not record.up:
            return "node is down (its connection to the controller is closed)"
        return "no outcome within the timeout"

