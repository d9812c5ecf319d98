"""backend.node.daemon -- the node daemon run by `seer daemon` on every node.

It joins the experiment's multicast group on the configured control
interface, keeps one mutual-TLS link to the controller
(:mod:`~backend.node.link`), registers with INFO, and passes every datagram
through::

    Rx -> verify -> Serializer -> Scheduler -> Dispatcher -> agents

* verify drops forged, garbled, foreign and other-epoch datagrams, counting
  each reason;
* the Serializer delivers serials once, in order, holding future ones and
  asking the controller (NACK) for gaps it sees from later serials or PINGs;
* the Scheduler holds a message until its ``time``;
* the Dispatcher runs it on the agent instance for (agent type, group).

Outcomes, the cumulative acknowledgement and agent events go back in REPORT
frames (:mod:`~backend.node.reporter`).  A WELCOME or SNAPSHOT with a state
snapshot brings a node that is too far behind (or new) up to date.
"""

from __future__ import annotations

import os
import random
import socket
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from backend.agent import AgentContext
from backend.net.heartbeat import Heartbeat
from backend.net.multicast import MulticastReceiver, listen_receiver, resolve_interface
from backend.net.session import FrameSession
from backend.net.tls import client_options
from backend.node.dispatcher import Dispatcher
from backend.node.hostinfo import discover
from backend.node.link import ControllerLink
from backend.node.nodefiles import NodeFiles
from backend.node.pollers import DaemonView, NodePollers
from backend.node.reporter import Reporter
from backend.node.scheduler import Scheduler
from backend.node.serializer import Serializer
from backend.runtime.agentloader import AgentRegistry, default_registry
from seer import __version__
from seer.config import parse_hostport
from seer.protocol.certs import CONTROLLER_NAME, CertDirectory
from seer.protocol.datagrams import KIND_PING, VerifyingKeys, decode_datagram
from seer.protocol.targets import check_node_name, short_name
from seer.protocol.wire import Frame, WireError

#: Raw datagrams kept (by bytes) before the first WELCOME brings the keys.
EARLY_LIMIT = 16 * 1024 * 1024
MAX_NACK_RANGES = 1000
#: Frames the controller forwards to a node that is a sink.
SINK_FRAMES = ("REPORT", "STREAM", "STATUS")


def _heartbeat_of(welcome: Frame) -> Heartbeat | None:
    """The heartbeat interval and timeout a WELCOME gives, if it gives usable ones."""
    given = welcome.get("heartbeat")
    try:
        heartbeat = Heartbeat(float(given["interval"]), float(given["timeout"]))
    except (TypeError, KeyError, ValueError):
        return None
    return heartbeat if 0 < heartbeat.interval < heartbeat.timeout else None


class NodeDaemon(service.MultiService):
    log = Logger()

    def __init__(
        self,
        name: str | None = None,
        *,
        reactor: Any,
        controller: tuple[str, int] | str = ("127.0.0.1", 7700),
        multicastaddr: tuple[str, int] | str = ("239.255.77.1", 7701),
        interface: str = "127.0.0.1",
        certs: str | Path = "certs",
        registry: AgentRegistry | None = None,
        attributes: dict[str, str] | None = None,
        labels: list[str] | None = None,
        addresses: list[str] | None = None,
        workdir: str | Path | None = None,
        rx_drop: float = 0.0,
        rx_drop_seed: int | None = None,
        server_name: str = CONTROLLER_NAME,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        jitter: Callable[[], float] | None = None,
        blocking: Callable[..., Deferred] | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.name = check_node_name(short_name(name or socket.gethostname()))
        self.setName(self.name)
        self.reactor = reactor
        self.controller_address = (
            parse_hostport(controller, "controller") if isinstance(controller, str) else controller
        )
        self.multicastaddr = (
            parse_hostport(multicastaddr, "multicast group")
            if isinstance(multicastaddr, str) else multicastaddr
        )
        self.interface = interface
        self.certs = CertDirectory(certs)
        self.registry = registry if registry is not None else default_registry()
        self.attributes = dict(attributes or {})
        self.labels = list(labels or [])
        self.addresses = list(addresses or [])
        self.interfaces: list[dict[str, Any]] = []
        self._discover = addresses is None or not addresses
        self.workdir = Path(workdir or Path("state") / self.name).resolve()
        #: Prefix of the tag on every process this daemon's agents start.
        self.process_tag = f"{self.name}/{os.getpid()}"
        self.rx_drop = rx_drop
        self._drop_rng = random.Random(
            None if rx_drop_seed is None else f"{rx_drop_seed}:{self.name}")
        self.server_name = server_name
        self._retry = (retry_initial, retry_max, jitter)
        self.epoch = 0
        self.keys: VerifyingKeys | None = None
        self.serializer = Serializer()
        self.scheduler = Scheduler(reactor, self._deliver)
        self.counters: Counter[str] = Counter()
        self.link: ControllerLink | None = None
        self.reporter = Reporter(reactor, self, lambda: self.serializer.delivered_upto,
                                 lambda: self.status()["counters"], self.counters)
        self._blocking = blocking or (
            lambda f, *a: deferToThreadPool(reactor, reactor.getThreadPool(), f, *a)
        )
        self.files = NodeFiles(self.workdir, self.registry, self.request, self._send_frame,
                               self._blocking, self._send_catalogue)
        self.dispatcher = Dispatcher(
            self.name, self.registry, self._context_for, self.reporter.outcome, reactor,
            system={"PUT": (self.files.put, True), "GET": (self.files.get, False)},
        )
        self.dispatcher.on_run_ended = self.reporter.run_ended
        self.ping_interval = 1.0
        self.interface_address = ""
        #: Called with every frame the controller forwards to this node as a sink.
        self.sink_listeners: list[Callable[[Frame], None]] = []
        self._early: list[bytes] = []
        self._early_bytes = 0
        self._repair_call: Any = None
        self._multicast_port: Any = None
        self._host_known = False
        #: The stats pollers (a child service; None when stats are off): STATS frames.
        self.pollers: NodePollers | None = None
        if stats is not None and stats.get("interval", 1.0) > 0:
            self.pollers = NodePollers(DaemonView(self), reactor, self.send, **stats)
            self.pollers.setServiceParent(self)

    @property
    def session(self) -> FrameSession | None:
        """The welcomed TLS session with the controller, or None."""
        return self.link.session if self.link is not None else None

    def send(self, header: dict[str, Any], blob: bytes = b"") -> bool:
        """Send a frame to the controller; False while disconnected."""
        return self.link is not None and self.link.send(header, blob)

    # -- life cycle ---------------------------------------------------------------------

    def startService(self) -> None:
        self.interface_address = resolve_interface(self.interface)
        self.files.load_saved_agents()
        own = self.certs.require(self.certs.node(self.name), f"node {self.name}")
        options = client_options(self.certs.ca.cert, own, self.server_name)
        receiver = MulticastReceiver(self.multicastaddr[0], self.interface_address,
                                     self.datagramReceived)
        self._multicast_port = listen_receiver(self.reactor, self.multicastaddr[1], receiver)
        retry_initial, retry_max, jitter = self._retry
        self.link = ControllerLink(
            self.reactor, self.controller_address, options, on_frame=self._on_frame,
            info=self._info, on_lost=lambda: None, count=lambda name: self.counters.update([name]),
            retry_initial=retry_initial, retry_max=retry_max, jitter=jitter)
        self.link.setServiceParent(self)
        # On loopback (several daemons on one host) the host's own interfaces
        # are not this node's experiment addresses: report only those given.
        if self._discover and not self.interface_address.startswith("127."):
            discover(self.reactor, self.interface_address).addCallback(self._discovered_host)
        else:
            self._host_known = True
        super().startService()
        host, port = self.controller_address
        self.log.info(
            "daemon {node}: group {group}:{port} on {iface}, controller {host}:{cport}, "
            "agents {agents}", node=self.name, group=self.multicastaddr[0],
            port=self.multicastaddr[1], iface=self.interface_address, host=host, cport=port,
            agents=", ".join(sorted(self.registry.types)) or "none",
        )

    def _discovered_host(self, found: tuple[list[str], list[dict[str, Any]]]) -> None:
        self.addresses, self.interfaces = found
        self._host_known = True
        self.link.info_ready()

    def stopService(self) -> Deferred:
        self.scheduler.cancel()
        self.reporter.stop()
        if self._repair_call is not None and self._repair_call.active():
            self._repair_call.cancel()
        d = self.dispatcher.stop_all()
        d.addBoth(lambda _: super(NodeDaemon, self).stopService())
        if self._multicast_port is not None:
            d.addBoth(lambda _: self._multicast_port.stopListening())
        return d

    # -- frames from the controller ------------------------------------------------------

    def _info(self) -> dict[str, Any] | None:
        """This node's INFO, or None until its addresses are known."""
        if not self._host_known:
            return None
        return {
            "type": "INFO",
            "name": self.name,
            "addresses": self.addresses,
            "interfaces": self.interfaces,
            "labels": self.labels,
            "attributes": self.attributes,
            "agents": self.registry.catalogue(),
            "agent_errors": [e.to_json() for e in self.registry.errors],
            "epoch": self.epoch,
            "serial": self.serializer.delivered_upto,
            "version": __version__,
        }

    def _on_frame(self, session: FrameSession, frame: Frame) -> None:
        handler = {
            "WELCOME": self._on_welcome,
            "REPAIR": self._on_repair,
            "SNAPSHOT": self._on_snapshot,
            "ERROR": self._on_error,
        }.get(frame.type)
        if handler is not None:
            handler(session, frame)
        elif frame.type in SINK_FRAMES:
            for listener in self.sink_listeners:
                listener(frame)
        else:
            self.counters["unknown_frames"] += 1

    def _on_welcome(self, session: FrameSession, frame: Frame) -> None:
        try:
            keys = VerifyingKeys.from_json(frame.get("keys") or {})
            epoch, serial = int(frame.get("epoch")), int(frame.get("serial"))
        except (WireError, TypeError, ValueError) as e:
            self.log.error("unusable WELCOME from the controller ({error}); reconnecting",
                           error=str(e))
            session.close()
            return
        reset = bool(frame.get("reset")) or epoch != self.epoch
        if reset:
            if self.epoch and epoch != self.epoch:
                self.log.info("controller epoch changed from {old} to {new}: starting afresh "
                              "at serial {serial}", old=self.epoch, new=epoch, serial=serial)
                self.scheduler.cancel()
            self.epoch = epoch
            self.serializer = Serializer(next_serial=serial + 1)
        else:
            self.serializer.observe(serial)
        self.keys = keys
        self.link.welcomed(session, _heartbeat_of(frame))
        self.ping_interval = float(frame.get("ping_interval") or 1.0)
        if frame.get("snapshot") is not None:
            self._apply_snapshot(serial, frame.get("snapshot"), force=reset)
        early, self._early, self._early_bytes = self._early, [], 0
        for data in early:
            self._accept_datagram(data)
        self.log.info("registered with controller {name}: epoch {epoch}, serial {serial}, "
                      "delivered up to {mine}", name=frame.get("controller", "?"), epoch=epoch,
                      serial=serial, mine=self.serializer.delivered_upto)
        self.reporter.schedule(urgent=True)
        self._request_repairs()

    def _on_repair(self, session: FrameSession, frame: Frame) -> None:
        self.counters["repairs_received"] += 1
        self._accept_datagram(frame.blob)

    def _on_snapshot(self, session: FrameSession, frame: Frame) -> None:
        if frame.get("epoch") != self.epoch or not isinstance(frame.get("serial"), int):
            self.counters["stale_snapshots"] += 1
            return
        self._apply_snapshot(frame.get("serial"), frame.get("snapshot") or {}, force=False)

    def _on_error(self, session: FrameSession, frame: Frame) -> None:
        self.log.warn("controller says: {error}", error=frame.get("error"))

    def _apply_snapshot(self, serial: int, snapshot: dict[str, Any], force: bool) -> None:
        if not force and serial <= self.serializer.delivered_upto:
            self.counters["stale_snapshots"] += 1
            return
        self.counters["snapshots_applied"] += 1
        # Files first (a group may need an agent module PUT earlier), then the
        # groups; later messages wait until both are done.
        done = self.files.sync(snapshot.get("files") or []).addCallback(
            lambda problems: self.dispatcher.apply_snapshot(snapshot.get("groups") or [])
            .addCallback(lambda more: problems + more))
        self.dispatcher.exclusively(done)
        queued = {s for _, s in self.scheduler.pending()}
        # Serials this node already delivered were already scheduled (and
        # may have run since the controller made the snapshot): not again.
        floor = 0 if force else self.serializer.delivered_upto
        for later_serial, message in snapshot.get("scheduled") or []:
            if floor < later_serial <= serial and later_serial not in queued:
                self.scheduler.submit(later_serial, message)
        for delivered in self.serializer.skip_to(serial):
            self.scheduler.submit(*delivered)
        self.log.info("applied a snapshot at serial {serial} ({groups} agent groups)",
                      serial=serial, groups=len(snapshot.get("groups") or []))

        def reported(problems: list[str]) -> None:
            for problem in problems:
                self.log.warn("{problem}", problem=problem)
                self.reporter.event("seer", "daemon", "snapshot_problem", {"problem": problem})
            self.reporter.snapshot_applied(serial)

        done.addCallback(reported)

    # -- multicast input: Rx -> verify -> Serializer -> Scheduler ------------------------

    def datagramReceived(self, data: bytes) -> None:
        self.counters["datagrams"] += 1
        if self.rx_drop and self._drop_rng.random() < self.rx_drop:
            self.counters["rx_dropped"] += 1
            return
        if self.keys is None:
            if self._early_bytes + len(data) <= EARLY_LIMIT:
                self._early.append(data)
                self._early_bytes += len(data)
            else:
                self.counters["early_overflow"] += 1
            return
        self._accept_datagram(data)

    def _accept_datagram(self, data: bytes) -> None:
        try:
            datagram = decode_datagram(self.keys, data)
        except WireError as e:
            self._drop(e.reason, str(e))
            return
        if datagram.epoch != self.epoch:
            self._drop("epoch", f"epoch {datagram.epoch}, the controller's is {self.epoch}")
            return
        if datagram.kind == KIND_PING:
            self.serializer.observe(datagram.serial)
            if self.session is None:
                # Our controller is reachable again (after a partition, say).
                self.link.reconnect_now()
        else:
            for serial, message in self.serializer.receive(datagram.numbered()):
                self.scheduler.submit(serial, message)
        self._request_repairs()
        if self.serializer.delivered_upto != self.reporter.reported_ack:
            self.reporter.schedule(urgent=False)

    def _drop(self, reason: str, detail: str) -> None:
        key = f"dropped_{reason}"
        self.counters[key] += 1
        count = self.counters[key]
        self.reporter.schedule(urgent=False)
        if count == 1 or count % 1000 == 0:
            self.log.warn("dropped a datagram ({reason}; {count} so far): {detail}",
                          reason=reason, count=count, detail=detail)

    def _deliver(self, serial: int, message: dict[str, Any]) -> None:
        if self.dispatcher.dispatch(serial, message):
            self.counters["dispatched"] += 1

    # -- repairs ---------------------------------------------------------------------------

    def _request_repairs(self) -> None:
        if self.session is None:
            return
        now = self.reactor.seconds()
        ranges = self.serializer.due_repairs(now)
        if ranges:
            self.counters["nacks"] += 1
            self.send({"type": "NACK", "ranges": [list(r) for r in ranges[:MAX_NACK_RANGES]]})
        wait = self.serializer.next_retry_in(now)
        if wait is not None and (self._repair_call is None or not self._repair_call.active()):
            self._repair_call = self.reactor.callLater(wait, self._retry_repairs)

    def _retry_repairs(self) -> None:
        self._repair_call = None
        self._request_repairs()

    # -- what agents and node files use ------------------------------------------------------

    def _stream(self, agent_type: str, group: str, name: str, data: Any) -> None:
        self.send({"type": "STREAM", "agent": agent_type, "group": group, "name": name,
                   "data": data, "time": self.reactor.seconds()})

    def _send_frame(self, header: dict[str, Any], blob: bytes = b"") -> bool:
        return self.send(header, blob)

    def _send_catalogue(self) -> None:
        """Agent types changed (a module was PUT): tell the controller."""
        self.send({"type": "CATALOGUE", "agents": self.registry.catalogue(),
                   "agent_errors": [e.to_json() for e in self.registry.errors]})

    def request(self, header: dict[str, Any]) -> Deferred:
        """Ask the controller something; fires with its reply frame."""
        return self.link.request(header)

    def node_table(self) -> Deferred:
        """{node: {"addresses", "interfaces", "labels", "attributes", "up"}}."""
        return self.request({"type": "TABLE"}).addCallback(lambda frame: frame.get("nodes") or {})

    def _context_for(self, agent_type: str, group: str) -> AgentContext:
        return AgentContext(
            node=self.name, agent_type=agent_type, group=group, reactor=self.reactor,
            report=lambda event, data: self.reporter.event(agent_type, group, event, data),
            stream=lambda name, data: self._stream(agent_type, group, name, data),
            node_info={"addresses": self.addresses, "interfaces": self.interfaces,
                       "labels": self.labels, "attributes": self.attributes},
            workdir=str(self.workdir / f"{agent_type}-{group}"),
            node_table=self.node_table,
            process_tag=f"{self.process_tag}/{agent_type}/{group}",
            run_finished=lambda why: self.dispatcher.run_finished((agent_type, group), why),
        )

    def status(self) -> dict[str, Any]:
        """Counters and pipeline state, for tests, benchmarks and operators."""
        return {
            "node": self.name, "epoch": self.epoch, "connected": self.session is not None,
            "delivered": self.serializer.delivered_upto, "held": len(self.serializer.held),
            "missing": self.serializer.missing, "duplicates": self.serializer.duplicates,
            "scheduled": len(self.scheduler),
            "counters": dict(self.counters, duplicates=self.serializer.duplicates,
                             delivered=self.serializer.delivered,
                             held=len(self.serializer.held), missing=self.serializer.missing),
        }
