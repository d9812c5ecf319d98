"""Fake network for tests: a reactor with multicast, and TLS frame sessions.

Twisted's ``MemoryReactorClock`` has no multicast; :class:`FakeReactor` adds
a recording multicast port, so a controller or daemon can be driven without
sockets, on a clock the test moves.  :class:`FakeSession` stands in for a TLS
connection: it records the frames sent to the peer.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from seer.protocol.tls import Identity
from seer.protocol.wire import Frame, FrameDecoder


class _FakeSocket:
    def setsockopt(self, *args: Any) -> None:
        pass


class FakeMulticastPort:
    """Records what a DatagramProtocol writes and which groups it joins."""

    def __init__(self, port: int, protocol: Any, interface: str) -> None:
        self.port = port or 40000
        self.protocol = protocol
        self.interface = interface
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.connected: tuple[str, int] | None = None
        self.groups: list[tuple[str, str]] = []
        self.ttl: int | None = None
        self.outgoing_interface: str | None = None
        self.loopback: bool | None = None
        self.socket = _FakeSocket()
        self.listening = True
        protocol.transport = self
        protocol.doStart()

    def write(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        self.written.append((data, addr or self.connected))

    def connect(self, host: str, port: int) -> None:
        self.connected = (host, port)

    def setTTL(self, ttl: int) -> None:
        self.ttl = ttl

    def setLoopbackMode(self, mode: bool) -> None:
        self.loopback = bool(mode)

    def setOutgoingInterface(self, address: str):
        self.outgoing_interface = address
        return succeed(1)

    def joinGroup(self, group: str, interface: str = ""):
        self.groups.append((group, interface))
        return succeed(1)

    def stopListening(self) -> None:
        if self.listening:
            self.listening = False
            self.protocol.doStop()

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", self.interface or "127.0.0.1", self.port)

    def take(self) -> list[bytes]:
        """The datagrams written since the last take."""
        out = [d for d, _ in self.written]
        self.written.clear()
        return out


class FakeReactor(MemoryReactorClock):
    """MemoryReactorClock plus recording multicast ports, and answers to TCP connects."""

    def __init__(self) -> None:
        super().__init__()
        self.multicast: list[FakeMulticastPort] = []
        #: Plain UDP ports (the controller's report port, a node's report sender).
        self.udp: list[FakeMulticastPort] = []
        self._answered_tcp = 0

    def listenMulticast(self, port: int, protocol: Any, interface: str = "",
                        maxPacketSize: int = 8192, listenMultiple: bool = False) -> FakeMulticastPort:
        fake = FakeMulticastPort(port, protocol, interface)
        self.multicast.append(fake)
        return fake

    def listenUDP(self, port: int, protocol: Any, interface: str = "",
                  maxPacketSize: int = 8192) -> FakeMulticastPort:
        fake = FakeMulticastPort(port, protocol, interface)
        self.udp.append(fake)
        return fake

    def answer_tcp(self, accept: bool) -> int:
        """Accept (with a StringTransport) or refuse every TCP connect not yet
        answered; returns how many there were."""
        pending = list(zip(self.tcpClients, self.connectors))[self._answered_tcp:]
        self._answered_tcp += len(pending)
        for (host, port, factory, _, _), connector in pending:
            if accept:
                protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
                protocol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", host, port)))
            else:
                factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
        return len(pending)


class _FakeTransport:
    def __init__(self, session: FakeSession) -> None:
        self.session = session
        self.aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        self.session.close()

    loseConnection = abortConnection


class FakeSession:
    """Stands in for a verified TLS session; records frames sent to the peer."""

    def __init__(self, name: str, role: str, peer: str = "127.0.0.1:50000") -> None:
        self.identity = Identity(name, role)
        self.peer = peer
        self.state: dict[str, Any] = {}
        self.sent: list[Frame] = []
        self.closed = False
        self.transport = _FakeTransport(self)
        #: When the peer was last heard and last sent to (backend.net.heartbeat).
        #: A fake session is a peer that is always alive and never idle, unless
        #: a test sets these to times on its clock.
        self.last_received = float("inf")
        self.last_sent = float("inf")

    def send(self, header: dict[str, Any], blob: bytes = b"") -> None:
        if not self.closed:
            self.sent.append(Frame(header, blob))

    def send_raw(self, data: bytes) -> None:
        if not self.closed:
            self.sent.extend(FrameDecoder().feed(data))

    def close(self) -> None:
        self.closed = True

    def of_type(self, frame_type: str) -> list[Frame]:
        return [f for f in self.sent if f.type == frame_type]

    def take(self) -> list[Frame]:
        out, self.sent = self.sent, []
        return out
