"""The controller service: its life cycle and the table of who may send what.

One router, several thin transports (the shape of twisted.names): the
mutual-TLS listener and the scripts' Unix socket deliver frames to
:meth:`Controller.frameReceived`, which checks the peer's role and calls the
handler for the frame's type (SEER's ``handleCOMMAND``, ``handleSET`` ...).
The handlers live with their job -- :mod:`~backend.controller.experimenter`,
:mod:`~backend.controller.nodeframes`, :mod:`~backend.controller.filerelay`
-- and messages for the experiment leave through :class:`CommWrapper` as
signed multicast datagrams.

The ports and the periodic duties (``pingExperiment`` so idle nodes notice
what they missed, ``retireSerials``, checkpoints, ``doUpdates``) are child
services on the injected reactor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from twisted.application import service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.controller.comm import CommWrapper
from backend.controller.experimenter import ExperimenterDesk
from backend.controller.filerelay import FileRelay
from backend.controller.jobs import Jobs
from backend.controller.liveness import Liveness
from backend.controller.nodeframes import NodeDesk
from backend.controller.nodetable import NodeTable
from backend.controller.outcomes import OutcomeTracker
from backend.controller.persistence import Persistence
from backend.controller.ports import Duty, ListeningPort, LocalSocketFolder
from backend.controller.reports import ReportReceiver
from backend.controller.retransmit import RETIRE_AFTER
from backend.controller.scripts import ScriptRunner
from backend.controller.sending import RequestSender
from backend.controller.sinks import Sinks
from backend.controller.stats import StatsService
from backend.net import heartbeat
from backend.net.multicast import MulticastSender, check_group, listen_sender, resolve_interface
from backend.net.session import FrameSession, SessionFactory, worth_logging
from backend.net.tls import server_options
from seer.config import parse_hostport
from seer.protocol.certs import CertDirectory
from seer.protocol.datagrams import SigningKeys
from seer.protocol.tls import Identity
from seer.protocol.wire import Frame, WireError

__all__ = ["Controller", "returnNone"]


#: A PING goes out at least once per this many ping intervals, even while
#: messages stream (they are what usually stands in for PINGs).
DISCOVERY_PING_EVERY = 5


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
        reactor: Any = None,
        certs: str | Path = "certs",
        listen: tuple[str, int] | str = ("127.0.0.1", 7700),
        interface: str = "127.0.0.1",
        state_dir: str | Path = "state/controller",
        ping_interval: float = 1.0,
        retire_after: float = RETIRE_AFTER,
        checkpoint_interval: float = 5.0,
        update_interval: float = 1.0,
        default_timeout: float = 10.0,
        heartbeat_interval: float = heartbeat.INTERVAL,
        heartbeat_timeout: float = heartbeat.TIMEOUT,
        blocking: Callable[..., Deferred] | None = None,
        stats: dict[str, Any] | None = None,
        dashboard: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.setName(name)
        if reactor is None:
            # SEER's documented signature has no reactor: only here, at the
            # edge where a SEER-style script builds a Controller itself, the
            # global one is the default (tests/test_layering.py knows).
            from twisted.internet import reactor
        self.reactor = reactor
        if isinstance(multicastaddr, str):
            multicastaddr = parse_hostport(multicastaddr, "multicast group")
        self.multicastaddr = (check_group(multicastaddr[0]), multicastaddr[1])
        self.listen = parse_hostport(listen, "listen address") if isinstance(listen, str) else listen
        self.interface = interface
        self.certs = CertDirectory(certs)
        self.cafile = Path(cafile) if cafile else self.certs.ca.cert
        self.nodes = NodeTable(nodefile or [], required or [])
        self.ping_interval = ping_interval
        self.retire_after = retire_after
        self.checkpoint_interval = checkpoint_interval
        self.update_interval = update_interval
        self.default_timeout = default_timeout
        self.heartbeat = heartbeat.Heartbeat(heartbeat_interval, heartbeat_timeout)
        self.blocking = blocking or (
            lambda f, *a: deferToThreadPool(reactor, reactor.getThreadPool(), f, *a)
        )
        self.counters: dict[str, int] = {}
        self.node_sessions: dict[str, FrameSession] = {}
        self.client_sessions: set[FrameSession] = set()
        self.sinks = Sinks(self.nodes, self.node_sessions, self.client_sessions)
        self.tracker = OutcomeTracker(reactor, self._why_unconfirmed)
        self.files = FileRelay(state_dir, self.blocking, self.refuse, self.count)
        self.persistence = Persistence(state_dir, self.nodes, reactor, self.blocking,
                                       retire_after, self.files.blobs)
        self.jobs = Jobs(state_dir, reactor, self.blocking)
        self.experimenter = ExperimenterDesk(self)
        self.node_desk = NodeDesk(self)
        self.liveness = Liveness(self, self.heartbeat)
        self.reports = ReportReceiver(self)
        #: Readings, aggregates, /metrics (no HTTP port unless the settings give one).
        self.stats = StatsService(self, **(stats if stats is not None else {"http": ""}))
        self.comm: CommWrapper | None = None
        self.sender: RequestSender | None = None
        self.scripts: ScriptRunner | None = None
        #: Fires once the TLS listener is up; fails if it cannot listen.
        self.ready: Deferred = Deferred()
        self._handlers = {
            ("experimenter", "COMMAND"): self.handleCOMMAND,
            ("experimenter", "SET"): self.handleSET,
            ("experimenter", "EXECUTE"): self.handleEXECUTE,
            ("experimenter", "GET"): self.handleGET,
            ("experimenter", "PUT"): self.handlePUT,
            ("experimenter", "NODES"): self.experimenter.nodes,
            ("experimenter", "WAIT"): self.experimenter.wait,
            ("experimenter", "AGENTS"): self.experimenter.agents,
            ("experimenter", "SUBSCRIBE"): self.experimenter.subscribe,
            ("experimenter", "STATUS"): self.experimenter.status,
            ("experimenter", "CANCEL"): self.experimenter.cancel,
            ("experimenter", "FORGET"): self.experimenter.forget,
            ("experimenter", "GROUPS"): self.experimenter.groups,
            ("experimenter", "JOBS"): self.experimenter.jobs,
            ("experimenter", "JOB"): self.experimenter.job,
            ("experimenter", "STATS"): self.stats.request,
            ("experimenter", "READINGS"): self.stats.readings,
            ("node", "INFO"): self.node_desk.info,
            ("node", "REPORT"): self.handleREPORT,
            ("node", "STREAM"): self.handleSTREAM,
            ("node", "NACK"): self.node_desk.nack,
            ("node", "TABLE"): self.node_desk.table,
            ("node", "FETCH"): self.files.fetch,
            ("node", "FILE"): self.files.file,
            ("node", "CATALOGUE"): self.node_desk.catalogue,
            ("node", "STATS"): self.stats.node_stats,
        }
        #: The web page (docs/DASHBOARD.md): on whenever there is an HTTP port.
        self.dashboard: Any = None
        if self.stats.web is not None:
            from backend.controller.dashboard import Dashboard  # twisted.web: only with a port

            self.dashboard = Dashboard(self, **(dashboard or {}))
            self.dashboard.setServiceParent(self.stats)
            self._handlers[("node", "TAIL")] = self.dashboard.tails.answered

    # -- life cycle ------------------------------------------------------------------

    def startService(self) -> None:
        # What can fail for a user's mistake is checked before anything is
        # created, so a failed start leaves no trace.
        tls = server_options(self.cafile, self.certs.require(self.certs.controller, "controller"))
        interface_address = resolve_interface(self.interface)
        restored = self.persistence.restore()
        self.jobs.load()
        keys = SigningKeys.generate()
        sender = MulticastSender(self.multicastaddr[0], self.multicastaddr[1], interface_address)
        self.comm = CommWrapper(
            self.name, self.multicastaddr, self, nodes=self.nodes, sinks=self.sinks,
            sender=sender, keys=keys, clock=self.reactor, epoch=restored.epoch,
            serial=restored.serial, model=restored.model,
            window=self.persistence.window_from(restored, keys),
            journal=self.persistence.first_journal(),
        )
        self.sender = RequestSender(self.comm, self.nodes, self.tracker, self.reactor,
                                    self.default_timeout, self.refuse)
        self.files.sender = self.sender
        self.sender.on_result = self._request_done
        self.sender.on_accepted = self.jobs.started
        self._add_children(tls, sender)
        super().startService()
        self.log.info(
            "controller {name} up: epoch {epoch}, continuing after serial {serial} "
            "({replayed} replayed from the journal); multicast {group}:{port} on {iface}",
            name=self.name, epoch=restored.epoch, serial=restored.serial,
            replayed=restored.replayed, group=self.multicastaddr[0],
            port=self.multicastaddr[1], iface=interface_address,
        )
        self.checkpoint()

    def _add_children(self, tls: Any, sender: MulticastSender) -> None:
        """The ports and duties, in the order they start (and stop in reverse)."""
        reactor = self.reactor
        ListeningPort("multicast", lambda: listen_sender(reactor, sender)).setServiceParent(self)
        endpoint = endpoints.SSL4ServerEndpoint(reactor, self.listen[1], tls,
                                                interface=self.listen[0])
        tls_port = ListeningPort("tls", lambda: endpoint.listen(
            SessionFactory(self, count=self.count)))
        tls_port.ready.addCallback(self._listening).chainDeferred(self.ready)
        tls_port.setServiceParent(self)
        # Nodes' outcomes by UDP (backend/controller/reports.py), on the
        # listener's address, any free port (each WELCOME says which).
        ListeningPort("reports", lambda: reactor.listenUDP(
            0, self.reports, interface=self.listen[0])).setServiceParent(self)
        # Scripts run by EXECUTE talk back through a Unix socket only this
        # machine's root can open (mode 0600 in a 0700 folder).
        folder = LocalSocketFolder()
        folder.setServiceParent(self)
        socket_path = folder.path / "control.sock"
        self.scripts = ScriptRunner(reactor, self.persistence.store.directory / "runs",
                                    socket_path, self.experimenter.stop_group, self.blocking)
        self.scripts.listeners.append(self.stats.records)
        ListeningPort("scripts", lambda: reactor.listenUNIX(
            str(socket_path), SessionFactory(self, tls=False, count=self.count),
            mode=0o600)).setServiceParent(folder)
        for name, interval, duty in (
            ("ping", self.ping_interval, self._tick),
            ("retire", min(10.0, self.retire_after / 4), self.comm.retireSerials),
            ("checkpoint", self.checkpoint_interval, self.checkpoint),
            ("updates", self.update_interval, self.doUpdates),
            ("liveness", min(1.0, self.heartbeat.interval), self.liveness.check),
        ):
            Duty(name, interval, duty, reactor).setServiceParent(self)
        self.stats.setServiceParent(self)

    def _listening(self, port: Any) -> Any:
        address = port.getHost()
        self.log.info("listening for TLS on {host}:{port}", host=address.host, port=address.port)
        # PINGs tell daemons started without --controller where to connect:
        # the listener's address, or the control interface's for a wildcard.
        host = address.host if address.host not in ("0.0.0.0", "::", "") else \
            self.comm.sender.interface_address
        self.comm.advertise = f"{host}:{address.port}"
        return port

    @property
    def port(self) -> Any:
        """The TLS listening port (None until it listens)."""
        child = self.namedServices.get("tls")
        return child.port if child is not None else None

    def stopService(self) -> Deferred:
        if self.comm is None:
            return super().stopService()
        # Send what is queued first: its on_sent would arm new outcome timers.
        self.comm.stop()
        self.tracker.cancel_all()
        if self.scripts is not None:
            self.scripts.stop_all()
        self.experimenter.stop()
        self.jobs.stop()
        self.reports.stop()
        for session in list(self.node_sessions.values()) + list(self.client_sessions):
            session.close()
        final = self.checkpoint(final=True)
        d = gatherResults([final, super().stopService()], consumeErrors=True)
        d.addBoth(lambda _: self.comm.journal.close())
        return d

    def _request_done(self, message: dict[str, Any], serial: int, nodes: list[str],
                      outcomes: dict[str, Any], sent_at: float) -> None:
        """A request's outcomes are all in (or its deadline passed): the job
        history and the stats pipeline's command log hear of it."""
        self.jobs.finished(serial, outcomes)
        self.stats.pipeline.command_done(message, serial, nodes, outcomes, sent_at)

    def checkpoint(self, final: bool = False) -> Deferred:
        """Write epoch, serial, node table and state model; rotate the journal."""
        if self.comm is None:
            return succeed(None)
        return self.persistence.checkpoint(self.comm, final)

    # -- sessions (router interface) -------------------------------------------------

    def sessionOpened(self, session: FrameSession) -> None:
        role = session.identity.role
        if role == "experimenter":
            self.client_sessions.add(session)
        elif role != "node":
            self.count("refused_role")
            session.send({"type": "ERROR", "error": f"a {role} certificate cannot connect here"})
            session.close()

    def helloReceived(self, session: FrameSession, frame: Frame) -> Identity | None:
        """A script on this machine presents its run's token."""
        run = self.scripts.by_token(frame.get("token")) if self.scripts else None
        if run is None:
            self.count("refused_tokens")
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
            self.reports.close(name)
            self.comm.nodeDown(name)

    def badInput(self, session: FrameSession, error: WireError) -> None:
        # Each one closes its connection; a fuzzer with a valid certificate
        # makes thousands: the first of each reason, then every LOG_EVERY-th.
        key = f"bad_frames_{error.reason}"
        self.count(key)
        if worth_logging(self.counters[key]):
            self.log.warn("bad frame from {session}: {error} ({count} so far)",
                          session=session, error=str(error), count=self.counters[key])

    def frameReceived(self, session: FrameSession, frame: Frame) -> None:
        role = session.identity.role
        handler = self._handlers.get((role, frame.type))
        if handler is None:
            self.handleGeneric(session, frame)
            return
        if role == "node" and frame.type != "INFO" and "node" not in session.state:
            session.send({"type": "ERROR", "error": f"send INFO before {frame.type}"})
            return
        handler(session, frame)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def refuse(self, session: FrameSession, frame: Frame, message: str) -> None:
        """Answer a request that cannot be carried out; nothing was changed."""
        self.count("request_errors")
        session.send({"type": "ERROR", "id": frame.get("id"), "error": message})

    # -- SEER's handlers -----------------------------------------------------------------

    def handleCOMMAND(self, sock: FrameSession, msg: Frame) -> None:
        """Apply a serial number and send to experiment nodes."""
        self.experimenter.command(sock, msg)

    def handleSET(self, sock: FrameSession, msg: Frame) -> None:
        """Check variables against the agent catalogue, then send like a COMMAND."""
        self.experimenter.set(sock, msg)

    def handleEXECUTE(self, sock: FrameSession, msg: Frame) -> None:
        """Save the file to disk and then run it as its own python process."""
        self.experimenter.execute(sock, msg)

    def handleGET(self, sock: FrameSession, msg: Frame) -> None:
        """Bring a file back from each targeted node."""
        self.files.get(sock, msg)

    def handlePUT(self, sock: FrameSession, msg: Frame) -> None:
        """Send a file (or an agent module) to the targeted nodes."""
        self.files.put(sock, msg)

    def handleREPORT(self, sock: FrameSession, msg: Frame) -> None:
        """Acknowledgements, per-message outcomes and agent events from a node."""
        self.node_desk.report(sock, msg)

    def handleSTREAM(self, sock: FrameSession, msg: Frame) -> None:
        """Continuous data from a node's agent, for the sinks."""
        self.node_desk.stream(sock, msg)

    # -- periodic duties -----------------------------------------------------------------

    def createInfoMessage(self) -> dict[str, Any]:
        """SEER: "decorate parent implementation so we can add node and ip
        responsibility info" -- the INFO describing this controller: its name,
        epoch and serial, where it listens, and the nodes and addresses it is
        responsible for."""
        comm = self.comm
        return {
            "type": "INFO", "name": self.name, "role": "controller",
            "epoch": comm.epoch if comm else None, "serial": comm.sent_serial if comm else 0,
            "listen": comm.advertise if comm else None,
            "group": "%s:%d" % self.multicastaddr,
            "nodes": {r.name: r.addresses for r in self.nodes},
        }

    def handleGeneric(self, sock: FrameSession, msg: Frame) -> None:
        """SEER: "generic handle pass, other methods can point to" -- a frame
        type with no handler of its own is refused, saying what is allowed."""
        role = sock.identity.role
        self.count("refused_frames")
        if role == "node" and ("experimenter", msg.type) in self._handlers:
            self._audit_node_request(sock, msg.type)
        allowed = sorted(t for r, t in self._handlers if r == role)
        article = "an" if role[:1] in ("a", "e", "i", "o", "u") else "a"
        sock.send({"type": "ERROR", "id": msg.get("id"),
                   "error": f"{article} {role} may not send {msg.type} "
                            f"(allowed: {', '.join(allowed)})"})

    def _audit_node_request(self, sock: FrameSession, kind: str) -> None:
        """A node's certificate tried what only an experimenter may do (a
        compromised node, most likely): an audit trail with its name -- the
        first of each kind on a connection, then every LOG_EVERY-th."""
        tried = sock.state.setdefault("experimenter_only", {})
        tried[kind] = count = tried.get(kind, 0) + 1
        if worth_logging(count):
            self.log.warn("node {node} ({peer}) sent {kind}, which only an experimenter may "
                          "send; refused ({count} on this connection)",
                          node=sock.identity.name, peer=sock.peer, kind=kind, count=count)

    def subloop(self) -> None:
        """SEER: "extra code that runs inside the main loop of the network
        router".  A Twisted controller has no loop of its own: this hook is
        called on every tick of its periodic duties (each ping interval);
        a subclass overrides it.  It does nothing here."""

    def pingExperiment(self) -> None:
        """Ping the experiment with the current serial unless traffic already
        did -- and, however busy, at least every DISCOVERY_PING_EVERY pings'
        worth, so that a daemon starting in the middle of a stream of
        commands still hears where the controller is."""
        comm = self.comm
        now = self.reactor.seconds()
        idle = comm.last_sent_at is None or now - comm.last_sent_at >= self.ping_interval * 0.9
        overdue = comm.last_ping_at is None or \
            now - comm.last_ping_at >= self.ping_interval * DISCOVERY_PING_EVERY
        if idle or overdue:
            comm.ping()

    def _tick(self) -> None:
        """Every ping interval: SEER's pingExperiment, then its subloop hook."""
        self.pingExperiment()
        self.subloop()

    def doUpdates(self) -> None:
        """Send a status update to sinks when something changed."""
        if self.sinks.has_clients():
            self.sinks.update(self.experimenter.status_now())

    def _why_unconfirmed(self, node: str) -> str:
        record = self.nodes.get(node)
        return record.why_unconfirmed() if record is not None else "node never registered"
