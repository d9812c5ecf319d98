"""backend.node.daemon -- the node daemon run by `seer daemon` on every node.

It joins the experiment's multicast group on the configured control
interface, keeps one mutual-TLS connection to the controller (reconnecting
with backoff), registers with INFO, and passes every datagram through::

    Rx -> verify -> Serializer -> Scheduler -> Dispatcher -> agents

* verify drops forged, garbled, foreign and other-epoch datagrams, counting
  each reason;
* the Serializer delivers serials once, in order, holding future ones and
  asking the controller (NACK) for gaps it sees from later serials or PINGs;
* the Scheduler holds a message until its ``time``;
* the Dispatcher runs it on the agent instance for (agent type, group).

Outcomes, the cumulative acknowledgement and agent events go back in REPORT
frames, batched per reactor turn.  A WELCOME or SNAPSHOT with a state
snapshot brings a node that is too far behind (or new) up to date.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.agent import AgentContext
from backend.runtime.agentloader import AgentRegistry, default_registry
from backend.node.dispatcher import Dispatcher
from backend.node.hostinfo import discover
from backend.node.nodefiles import NodeFiles
from backend.net.multicast import MulticastReceiver, listen_receiver, resolve_interface
from backend.node.scheduler import Scheduler
from backend.node.serializer import Serializer
from backend.net.session import FrameSession, SessionFactory
from seer import __version__
from seer.protocol.certs import CONTROLLER_NAME, CertDirectory
from seer.config import parse_hostport
from seer.protocol.targets import check_node_name, short_name
from backend.net.tls import client_options
from seer.protocol.datagrams import KIND_PING, VerifyingKeys, decode_datagram
from seer.protocol.wire import Frame, WireError

#: How long to wait for WELCOME after the TLS handshake before retrying.
WELCOME_TIMEOUT = 20.0
#: An acknowledgement with no outcome to carry waits this long to batch.
ACK_DELAY = 0.2
#: Raw datagrams kept (by bytes) before the first WELCOME brings the keys.
EARLY_LIMIT = 16 * 1024 * 1024
#: The daemon's counters ride along with a REPORT at most this often ...
STATS_INTERVAL = 5.0
#: ... and, if only the traffic counters moved, this often.
STATS_REFRESH = 60.0
ROUTINE_COUNTERS = frozenset({"datagrams", "delivered", "dispatched"})
#: Outcomes and events kept while the controller is unreachable.
BACKLOG_LIMIT = 100_000
MAX_NACK_RANGES = 1000


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
    ) -> None:
        super().__init__()
        self.name = check_node_name(short_name(name or socket.gethostname()))
        self.setName(self.name)
        self.reactor = reactor
        self.clock = reactor
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
        # Jitter spreads a thousand daemons' reconnections after a controller
        # restart instead of having them arrive in the same millisecond.
        self.retry_policy = backoffPolicy(
            retry_initial, retry_max, 2.0,
            jitter=jitter or (lambda: random.random() * retry_initial),
        )
        self.epoch = 0
        self.keys: VerifyingKeys | None = None
        self.serializer = Serializer()
        self.scheduler = Scheduler(reactor, self._deliver)
        self._blocking = blocking or (
            lambda f, *a: deferToThreadPool(reactor, reactor.getThreadPool(), f, *a)
        )
        self.files = NodeFiles(self.workdir, self.registry, self.request, self._send_frame,
                               self._blocking, self._send_catalogue)
        self.dispatcher = Dispatcher(
            self.name, self.registry, self._context_for, self._outcome, reactor,
            system={"PUT": (self.files.put, True), "GET": (self.files.get, False)},
        )
        self.session: FrameSession | None = None
        self.counters: Counter[str] = Counter()
        self.ping_interval = 1.0
        self.interface_address = ""
        #: Called with every frame the controller forwards to this node as a sink.
        self.sink_listeners: list[Callable[[Frame], None]] = []
        self._early: list[bytes] = []
        self._early_bytes = 0
        self._outcomes: list[list[Any]] = []
        self._events: list[dict[str, Any]] = []
        self._snapshot_done: int | None = None
        self._reported_ack = -1
        self._stats_sent_at = float("-inf")
        self._stats_last: dict[str, int] = {}
        self._stats_call: Any = None
        self._report_call: Any = None
        self._repair_call: Any = None
        self._multicast_port: Any = None
        self._host_known = False
        #: Connections in a row that closed before a WELCOME (for the backoff).
        self._unwelcomed = 0
        self._info_waiting: list[FrameSession] = []
        self._link: ClientService | None = None
        self._requests: dict[int, Deferred] = {}
        self._request_ids = itertools.count(1)

    # -- life cycle ---------------------------------------------------------------------

    def startService(self) -> None:
        self.interface_address = resolve_interface(self.interface)
        self.files.load_saved_agents()
        receiver = MulticastReceiver(self.multicastaddr[0], self.interface_address,
                                     self.datagramReceived)
        self._multicast_port = listen_receiver(self.reactor, self.multicastaddr[1], receiver)
        own = self.certs.require(self.certs.node(self.name), f"node {self.name}")
        options = client_options(self.certs.ca.cert, own, self.server_name)
        host, port = self.controller_address
        endpoint = endpoints.SSL4ClientEndpoint(self.reactor, host, port, options, timeout=10)
        # No prepareConnection: Twisted's ClientService has no transition for
        # a connection lost while it is pending, and would never retry.  The
        # WELCOME timeout and the backoff across unwelcomed connections are
        # kept here instead.
        self._link = ClientService(endpoint, SessionFactory(self), retryPolicy=self._retry_delay,
                                   clock=self.clock)
        self._link.setServiceParent(self)
        # On loopback (several daemons on one host) the host's own interfaces
        # are not this node's experiment addresses: report only those given.
        if self._discover and not self.interface_address.startswith("127."):
            discover(self.reactor, self.interface_address).addCallback(self._discovered_host)
        else:
            self._host_is_known()
        super().startService()
        self.log.info(
            "daemon {node}: group {group}:{port} on {iface}, controller {host}:{cport}, "
            "agents {agents}", node=self.name, group=self.multicastaddr[0],
            port=self.multicastaddr[1], iface=self.interface_address, host=host, cport=port,
            agents=", ".join(sorted(self.registry.types)) or "none",
        )

    def _discovered_host(self, found: tuple[list[str], list[dict[str, Any]]]) -> None:
        self.addresses, self.interfaces = found
        self._host_is_known()

    def _host_is_known(self) -> None:
        self._host_known = True
        waiting, self._info_waiting = self._info_waiting, []
        for session in waiting:
            self._send_info(session)

    def _send_info(self, session: FrameSession) -> None:
        if session.closed:
            return
        try:
            session.send(self._info())
        except Exception:
            self.log.failure("cannot send INFO to the controller; closing to try again")
            session.close()

    def stopService(self) -> Deferred:
        self.scheduler.cancel()
        self._flush_report()
        for call in (self._report_call, self._repair_call, self._stats_call):
            if call is not None and call.active():
                call.cancel()
        d = self.dispatcher.stop_all()
        d.addBoth(lambda _: super(NodeDaemon, self).stopService())
        if self._multicast_port is not None:
            d.addBoth(lambda _: self._multicast_port.stopListening())
        return d

    # -- the controller link (router interface) ---------------------------------------

    def _retry_delay(self, attempt: int) -> float:
        # ClientService counts failed TCP connects only; a connection that
        # closes before WELCOME (bad certificate, overloaded controller) must
        # back off too.
        return self.retry_policy(max(attempt, self._unwelcomed))

    def sessionOpened(self, session: FrameSession) -> None:
        session.state["welcome_timer"] = self.clock.callLater(
            WELCOME_TIMEOUT, session.transport.abortConnection)
        if session.identity.role != "controller":
            self.log.error("{peer} presented a {role} certificate, not the controller's; closing",
                           peer=session.peer, role=session.identity.role)
            session.close()
            return
        if self._host_known:
            self._send_info(session)
        else:
            self._info_waiting.append(session)

    def frameReceived(self, session: FrameSession, frame: Frame) -> None:
        waiting = self._requests.pop(frame.get("id"), None) if frame.get("id") else None
        if waiting is not None:
            if frame.type == "ERROR":
                waiting.errback(RuntimeError(f"controller: {frame.get('error')}"))
            else:
                waiting.callback(frame)
            return
        handler = {
            "WELCOME": self._on_welcome,
            "REPAIR": self._on_repair,
            "SNAPSHOT": self._on_snapshot,
            "ERROR": self._on_error,
        }.get(frame.type)
        if handler is not None:
            handler(session, frame)
        elif frame.type in ("REPORT", "STREAM", "STATUS"):
            for listener in self.sink_listeners:
                listener(frame)
        else:
            self.counters["unknown_frames"] += 1

    def sessionClosed(self, session: FrameSession, reason: Failure) -> None:
        timer = session.state.pop("welcome_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        if not session.state.get("welcomed"):
            self._unwelcomed += 1
            why = reason.getErrorMessage() if reason is not None else "closed"
            self.log.warn("connection to the controller closed before WELCOME ({why}); "
                          "retrying", why=why)
        if self.session is session:
            self.session = None
            self.log.info("connection to the controller lost ({why}); reconnecting",
                          why=reason.getErrorMessage() if reason is not None else "closed")
        if self.session is None:
            requests, self._requests = self._requests, {}
            for d in requests.values():
                d.errback(RuntimeError("the connection to the controller closed"))

    def badInput(self, session: FrameSession, error: WireError) -> None:
        self.counters[f"bad_frames_{error.reason}"] += 1
        self.log.warn("bad frame from the controller: {error}", error=str(error))

    def _info(self) -> dict[str, Any]:
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
        self.session = session
        self.ping_interval = float(frame.get("ping_interval") or 1.0)
        if frame.get("snapshot") is not None:
            self._apply_snapshot(serial, frame.get("snapshot"), force=reset)
        early, self._early, self._early_bytes = self._early, [], 0
        for data in early:
            self._accept_datagram(data)
        session.state["welcomed"] = True
        self._unwelcomed = 0
        timer = session.state.pop("welcome_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        self.log.info("registered with controller {name}: epoch {epoch}, serial {serial}, "
                      "delivered up to {mine}", name=frame.get("controller", "?"), epoch=epoch,
                      serial=serial, mine=self.serializer.delivered_upto)
        self._schedule_report(urgent=True)
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
                self._report_event("seer", "daemon", "snapshot_problem", {"problem": problem})
            self._snapshot_done = serial
            self._schedule_report(urgent=True)

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
        else:
            for serial, message in self.serializer.receive(datagram.numbered()):
                self.scheduler.submit(serial, message)
        self._request_repairs()
        if self.serializer.delivered_upto != self._reported_ack:
            self._schedule_report(urgent=False)

    def _drop(self, reason: str, detail: str) -> None:
        key = f"dropped_{reason}"
        self.counters[key] += 1
        count = self.counters[key]
        self._schedule_report(urgent=False)
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
        now = self.clock.seconds()
        ranges = self.serializer.due_repairs(now)
        if ranges:
            self.counters["nacks"] += 1
            self.session.send({"type": "NACK",
                               "ranges": [list(r) for r in ranges[:MAX_NACK_RANGES]]})
        wait = self.serializer.next_retry_in(now)
        if wait is not None and (self._repair_call is None or not self._repair_call.active()):
            self._repair_call = self.clock.callLater(wait, self._retry_repairs)

    def _retry_repairs(self) -> None:
        self._repair_call = None
        self._request_repairs()

    # -- reporting ---------------------------------------------------------------------------

    def _outcome(self, serial: int, status: str, error: str | None, result: Any,
                 at: float) -> None:
        self._backlog(self._outcomes, [serial, status, error, result, round(at, 6)], "outcomes")
        self._schedule_report(urgent=True)

    def _report_event(self, agent_type: str, group: str, event: str, data: dict[str, Any]) -> None:
        self._backlog(self._events, {"agent": agent_type, "group": group, "event": event,
                                     "data": data, "time": self.clock.seconds()}, "events")
        self._schedule_report(urgent=True)

    def _stream(self, agent_type: str, group: str, name: str, data: Any) -> None:
        if self.session is not None:
            self.session.send({"type": "STREAM", "agent": agent_type, "group": group,
                               "name": name, "data": data, "time": self.clock.seconds()})

    def _backlog(self, queue: list[Any], item: Any, what: str) -> None:
        if len(queue) >= BACKLOG_LIMIT:
            del queue[0]
            self.counters[f"{what}_dropped"] += 1
        queue.append(item)

    def _schedule_report(self, urgent: bool) -> None:
        call = self._report_call
        if call is not None and call.active():
            if urgent and call.getTime() > self.clock.seconds():
                call.reset(0)
            return
        self._report_call = self.clock.callLater(0 if urgent else ACK_DELAY, self._flush_report)

    def _flush_report(self) -> None:
        self._report_call = None
        if self.session is None:
            return  # kept; sent after the next WELCOME
        header: dict[str, Any] = {"type": "REPORT", "ack": self.serializer.delivered_upto}
        if self._outcomes:
            header["outcomes"], self._outcomes = self._outcomes, []
        if self._events:
            header["events"], self._events = self._events, []
        if self._snapshot_done is not None:
            header["snapshot"], self._snapshot_done = self._snapshot_done, None
        self._add_stats(header)
        self.session.send(header)
        self._reported_ack = header["ack"]

    def _add_stats(self, header: dict[str, Any]) -> None:
        """Counters ride along at most once per STATS_INTERVAL when something
        worth telling changed (a drop, a repair ...), and at least once per
        STATS_REFRESH while traffic flows: a thousand nodes reporting every
        datagram count each second would load the controller for nothing."""
        now = self.clock.seconds()
        due = self._stats_sent_at + STATS_INTERVAL
        if now >= due:
            counters = self.status()["counters"]
            notable = {k: v for k, v in counters.items() if k not in ROUTINE_COUNTERS}
            last = {k: v for k, v in self._stats_last.items() if k not in ROUTINE_COUNTERS}
            stale = now - self._stats_sent_at >= STATS_REFRESH
            if notable != last or (stale and counters != self._stats_last):
                header["stats"] = self._stats_last = counters
                self._stats_sent_at = now
        elif self._stats_call is None or not self._stats_call.active():
            self._stats_call = self.clock.callLater(due - now, self._stats_due)

    def _stats_due(self) -> None:
        self._stats_call = None
        self._schedule_report(urgent=True)

    def _send_frame(self, header: dict[str, Any], blob: bytes = b"") -> bool:
        if self.session is None:
            return False
        self.session.send(header, blob)
        return True

    def _send_catalogue(self) -> None:
        """Agent types changed (a module was PUT): tell the controller."""
        self._send_frame({"type": "CATALOGUE", "agents": self.registry.catalogue(),
                          "agent_errors": [e.to_json() for e in self.registry.errors]})

    # -- requests to the controller ------------------------------------------------------

    def request(self, header: dict[str, Any]) -> Deferred:
        """Ask the controller something; fires with its reply frame."""
        if self.session is None:
            return fail(RuntimeError("not connected to the controller"))
        request_id = next(self._request_ids)
        d: Deferred = Deferred()
        self._requests[request_id] = d
        self.session.send(dict(header, id=request_id))
        return d

    def node_table(self) -> Deferred:
        """{node: {"addresses", "interfaces", "labels", "attributes", "up"}}."""
        return self.request({"type": "TABLE"}).addCallback(lambda frame: frame.get("nodes") or {})

    # -- agents' context -----------------------------------------------------------------------

    def _context_for(self, agent_type: str, group: str) -> AgentContext:
        return AgentContext(
            node=self.name, agent_type=agent_type, group=group, reactor=self.reactor,
            report=lambda event, data: self._report_event(agent_type, group, event, data),
            stream=lambda name, data: self._stream(agent_type, group, name, data),
            node_info={"addresses": self.addresses, "interfaces": self.interfaces,
                       "labels": self.labels, "attributes": self.attributes},
            workdir=str(self.workdir / f"{agent_type}-{group}"),
            node_table=self.node_table,
            process_tag=f"{self.process_tag}/{agent_type}/{group}",
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

