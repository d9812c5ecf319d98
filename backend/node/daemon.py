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
from backend.net.multicast import MulticastReceiver, listen_receiver, resolve_interface
from backend.net.session import FrameSession, worth_logging
from backend.net.tls import client_options
from backend.node.controllerframes import ControllerFrames
from backend.node.discovery import Discovery
from backend.node.dispatcher import Dispatcher
from backend.node.hostinfo import discover
from backend.node.link import ControllerLink
from backend.node.nodefiles import NodeFiles
from backend.node.pollers import DaemonView, NodePollers
from backend.node.reportchannel import ReportChannel
from backend.node.reporter import Reporter
from backend.node.scheduler import Scheduler
from backend.node.serializer import Serializer
from backend.node.workers import WorkerSupervisor
from backend.runtime.agentloader import AgentRegistry, default_registry
from seer import __version__
from seer.config import parse_hostport
from seer.protocol.certs import CONTROLLER_NAME, CertDirectory
from seer.protocol.datagrams import KIND_PING, VerifyingKeys, decode_datagram, peek_ping
from seer.protocol.targets import check_node_name, short_name
from seer.protocol.wire import Frame, WireError

#: Raw datagrams kept (by bytes) before the first WELCOME brings the keys.
EARLY_LIMIT = 16 * 1024 * 1024
MAX_NACK_RANGES = 1000


class NodeDaemon(service.MultiService):
    log = Logger()

    def __init__(
        self,
        name: str | None = None,
        *,
        reactor: Any,
        controller: tuple[str, int] | str | None = None,
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
        isolate: str = "auto",
    ) -> None:
        super().__init__()
        self.name = check_node_name(short_name(name or socket.gethostname()))
        self.setName(self.name)
        self.reactor = reactor
        #: Where the controller is; None: found from its PINGs (backend.node.discovery).
        self.controller_address = (
            parse_hostport(controller, "controller") if isinstance(controller, str) and controller
            else controller or None
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
        #: Agent groups that run isolated run in these worker processes.
        self.workers = WorkerSupervisor(reactor, blocking=self._blocking)
        self.dispatcher = Dispatcher(
            self.name, self.registry, self._context_for, self.reporter.outcome, reactor,
            system={"PUT": (self.files.put, True), "GET": (self._get, False)},
            workers=self.workers, isolate=isolate,
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
        self._report_port: Any = None
        self._host_known = False
        #: Fires at the first WELCOME; fails when the controller refused to
        #: register this node REFUSALS_BEFORE_GIVING_UP times (`seer daemon`
        #: then exits non-zero, saying why).
        self.ready: Deferred = Deferred()
        self.discovery: Discovery | None = None
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
        self.frames = ControllerFrames(self)
        self.link = ControllerLink(
            self.reactor, self.controller_address, options, on_frame=self.frames.on_frame,
            info=self._info, on_lost=self._link_lost,
            count=lambda name: self.counters.update([name]),
            retry_initial=retry_initial, retry_max=retry_max, jitter=jitter)
        self.link.setServiceParent(self)
        self.discovery = Discovery(self.reactor, options, self.link.bind)
        # On loopback (several daemons on one host) the host's own interfaces
        # are not this node's experiment addresses: report only those given.
        if self._discover and not self.interface_address.startswith("127."):
            discover(self.reactor, self.interface_address).addCallback(self._discovered_host)
        else:
            self._host_known = True
        super().startService()
        where = "%s:%d" % self.controller_address if self.controller_address else \
            "from its PINGs"
        self.log.info(
            "daemon {node}: group {group}:{port} on {iface}, controller {where}, "
            "agents {agents}", node=self.name, group=self.multicastaddr[0],
            port=self.multicastaddr[1], iface=self.interface_address, where=where,
            agents=", ".join(sorted(self.registry.types)) or "none",
        )

    def _discovered_host(self, found: tuple[list[str], list[dict[str, Any]]]) -> None:
        self.addresses, self.interfaces = found
        self._host_known = True
        self.link.info_ready()

    def stopService(self) -> Deferred:
        self.scheduler.cancel()
        if self.discovery is not None:
            self.discovery.cancel()
        self.reporter.stop()
        if self._repair_call is not None and self._repair_call.active():
            self._repair_call.cancel()
        d = self.dispatcher.stop_all()
        d.addBoth(lambda _: super(NodeDaemon, self).stopService())
        if self._multicast_port is not None:
            d.addBoth(lambda _: self._multicast_port.stopListening())
        d.addBoth(lambda _: self._close_report_channel())
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

    # -- multicast input: Rx -> verify -> Serializer -> Scheduler ------------------------

    def datagramReceived(self, data: bytes) -> None:
        self.counters["datagrams"] += 1
        if self.rx_drop and self._drop_rng.random() < self.rx_drop:
            self.counters["rx_dropped"] += 1
            return
        if self.keys is None:
            self._heard_unverified(data)
            if self._early_bytes + len(data) <= EARLY_LIMIT:
                self._early.append(data)
                self._early_bytes += len(data)
            else:
                self.counters["early_overflow"] += 1
            return
        self.reporter.hold()
        try:
            self.accept_datagram(data)
        finally:
            self.reporter.release()

    def accept_datagram(self, data: bytes, by_tls: bool = False) -> None:
        """``by_tls``: a REPAIR's datagram, the controller's by its TLS link."""
        try:
            datagram = decode_datagram(self.keys, data, by_tls)
        except WireError as e:
            self._drop(e.reason, str(e))
            return
        if datagram.epoch != self.epoch:
            self._drop("epoch", f"epoch {datagram.epoch}, the controller's is {self.epoch}")
            return
        if datagram.kind == KIND_PING:
            self.serializer.observe(datagram.serial)
            if self.session is None:
                self._heard_controller(datagram.body.get("controller"))
        else:
            for serial, message in self.serializer.receive(datagram.numbered()):
                self.scheduler.submit(serial, message)
        self.request_repairs()
        if self.serializer.delivered_upto != self.reporter.reported_ack:
            self.reporter.schedule(urgent=False)

    def _get(self, serial: int, message: dict[str, Any]) -> Deferred:
        # A GET's FILE frames go by TLS and must reach the client before its
        # outcome: that outcome goes by TLS too, behind them.
        self.reporter.keep_order(serial)
        return self.files.get(serial, message)

    def open_report_channel(self, given: Any) -> None:
        """The WELCOME's report session: outcomes by UDP from the control
        interface to the controller (backend/node/reportchannel.py)."""
        self._close_report_channel()
        channel = ReportChannel.from_welcome(self.link.address[0], given) \
            if self.link.address is not None else None
        if channel is not None:
            self._report_port = self.reactor.listenUDP(0, channel,
                                                       interface=self.interface_address)
        self.reporter.use_channel(channel)

    def _close_report_channel(self) -> None:
        if self._report_port is not None:
            self._report_port.stopListening()
            self._report_port = None

    def _link_lost(self) -> None:
        self._close_report_channel()
        self.reporter.use_channel(None)

    def accept_early(self) -> None:
        """The keys came: verify the datagrams that arrived before them."""
        early, self._early, self._early_bytes = self._early, [], 0
        for data in early:
            self.accept_datagram(data)

    def _heard_unverified(self, data: bytes) -> None:
        """A datagram before the keys: a PING may say where the controller is."""
        if self.controller_address is not None or self.session is not None:
            return  # told where it is, or connected
        try:
            where = peek_ping(data).get("controller")
        except WireError:
            return
        if where is not None:
            self.discovery.consider(where)

    def _heard_controller(self, where: Any) -> None:
        """Our controller's PING while disconnected: the network is back."""
        bound = self.link.address
        if self.controller_address is not None or where is None or \
                (bound is not None and "%s:%d" % bound == where):
            self.link.reconnect_now()
        else:
            self.discovery.consider(where)  # it moved: probe the new address first

    def _drop(self, reason: str, detail: str) -> None:
        key = f"dropped_{reason}"
        self.counters[key] += 1
        count = self.counters[key]
        self.reporter.schedule(urgent=False)
        if worth_logging(count):
            self.log.warn("dropped a datagram ({reason}; {count} so far): {detail}",
                          reason=reason, count=count, detail=detail)

    def _deliver(self, serial: int, message: dict[str, Any]) -> None:
        if self.dispatcher.dispatch(serial, message):
            self.counters["dispatched"] += 1

    # -- repairs ---------------------------------------------------------------------------

    def request_repairs(self) -> None:
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
        self.request_repairs()

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
