"""A TLS connection speaking SEER frames: a thin adapter around a router.

The session only frames and unframes; what frames mean is up to its router
(the controller, or a daemon's controller link), which gets:

* ``sessionOpened(session)`` once the TLS handshake verified the peer
  (``session.identity`` is then its certificate's name and role);
* ``frameReceived(session, frame)`` for every frame;
* ``sessionClosed(session, reason)`` when a session ends (``identity`` is
  None if it never completed its handshake);
* ``badInput(session, error)`` when bytes are not frames (the session then
  sends an ERROR and closes: the stream is out of step).

On a local Unix socket there is no TLS: the first frame must be HELLO with a
token, which ``helloReceived(session, frame)`` turns into an identity (or
None, and the session is closed).

A peer that does not finish its handshake (or HELLO) within
``HANDSHAKE_TIMEOUT`` is dropped, so half-open connections cannot pile up.
Connections that end before their handshake completed are counted per
factory (and in the router's counters, if it gives a ``count``), and logged
the first time and then every ``LOG_EVERY``-th time with the count, as the
daemon does for dropped datagrams: a port scan or a fuzzer must not fill the
log with a line per connection.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Protocol as TypingProtocol

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IHandshakeListener, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from backend.net.heartbeat import HEARTBEAT
from backend.net.tls import identity_of
from seer.protocol.tls import Identity
from seer.protocol.wire import Frame, FrameDecoder, WireError, encode_frame

HANDSHAKE_TIMEOUT = 15.0
#: A connection that failed before its handshake completed is logged the
#: first time and then once per this many (with the count so far).
LOG_EVERY = 1000


def worth_logging(count: int) -> bool:
    """The first of a kind, and every LOG_EVERY-th after it."""
    return count == 1 or count % LOG_EVERY == 0


class Router(TypingProtocol):
    reactor: IReactorTime

    def sessionOpened(self, session: FrameSession) -> None: ...
    def frameReceived(self, session: FrameSession, frame: Frame) -> None: ...
    def sessionClosed(self, session: FrameSession, reason: Failure) -> None: ...
    def badInput(self, session: FrameSession, error: WireError) -> None: ...


@implementer(IHandshakeListener)
class FrameSession(Protocol):
    log = Logger()

    def __init__(self, router: Router, tls: bool = True) -> None:
        self.router = router
        self.tls = tls
        self.decoder = FrameDecoder()
        self.identity: Identity | None = None
        self.peer = "?"
        self.closed = False
        #: Frame bytes received and sent (for footprint measurements).
        self.bytes_in = 0
        self.bytes_out = 0
        #: When something last came from the peer and went to it (the
        #: router's clock): heartbeats are sent and missed by these.
        self.last_received = router.reactor.seconds()
        self.last_sent = self.last_received
        #: The router's per-connection state (a node's name, sink flag ...).
        self.state: dict[str, Any] = {}
        self._handshake_timer: IDelayedCall | None = None
        #: Dropped for not finishing its handshake in time.
        self.timed_out = False

    def __repr__(self) -> str:
        return f"<FrameSession {self.identity or 'unverified'} from {self.peer}>"

    def connectionMade(self) -> None:
        address = self.transport.getPeer()
        if self.tls:
            self.peer = f"{getattr(address, 'host', '?')}:{getattr(address, 'port', '?')}"
            # Frames are small and answered at once: Nagle's algorithm would
            # hold them back for a delayed ACK (40 ms on Linux) each time.
            set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
            if set_no_delay is not None:
                set_no_delay(True)
        else:
            self.peer = "local socket"
        self._handshake_timer = self.router.reactor.callLater(
            HANDSHAKE_TIMEOUT, self._handshake_timed_out
        )

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        self.timed_out = True
        count = self._unverified("handshake_timeouts")
        if worth_logging(count):
            self.log.warn("no TLS handshake from {peer} in {timeout} s; closing "
                          "({count} so far)", peer=self.peer, timeout=HANDSHAKE_TIMEOUT,
                          count=count)
        self.transport.abortConnection()

    def _unverified(self, name: str) -> int:
        """Count a connection that ended unverified; how many so far."""
        factory = self.factory
        if isinstance(factory, SessionFactory):
            return factory.unverified(name)
        return 1  # a session without its factory (tests): every one is the first

    def handshakeCompleted(self) -> None:
        self._cancel_handshake_timer()
        try:
            self.identity = identity_of(self.transport.getPeerCertificate())
        except ValueError as e:
            self.log.warn("peer {peer}: {error}", peer=self.peer, error=str(e))
            self.transport.abortConnection()
            return
        self.router.sessionOpened(self)

    def dataReceived(self, data: bytes) -> None:
        if self.closed or (self.identity is None and self.tls):
            return
        self.bytes_in += len(data)
        self.last_received = self.router.reactor.seconds()
        try:
            frames = self.decoder.feed(data)
        except WireError as e:
            self.router.badInput(self, e)
            self.send({"type": "ERROR", "error": f"bad frame ({e}); closing the connection"})
            self.close()
            return
        if self.identity is None and frames:
            hello, frames = frames[0], frames[1:]
            if not self._hello(hello):
                return
        for frame in frames:
            if self.closed:
                break
            if frame.type == HEARTBEAT:
                continue  # a sign of life, nothing more (backend.net.heartbeat)
            try:
                self.router.frameReceived(self, frame)
            except Exception:
                self.log.failure("handling {type} from {session}", type=frame.type, session=self)
                self.send({"type": "ERROR", "id": frame.get("id"),
                           "error": f"internal error handling {frame.type}; see the log"})

    def _hello(self, frame: Frame) -> bool:
        identity = self.router.helloReceived(self, frame) if frame.type == "HELLO" else None
        if identity is None:
            self.send({"type": "ERROR", "id": frame.get("id"),
                       "error": "send HELLO with a valid token first"})
            self.close()
            return False
        self._cancel_handshake_timer()
        self.identity = identity
        self.send({"type": "REPLY", "id": frame.get("id"), "ok": True})
        self.router.sessionOpened(self)
        return True

    def send(self, header: dict[str, Any], blob: bytes = b"") -> None:
        if not self.closed:
            data = encode_frame(header, blob)
            self.bytes_out += len(data)
            self.last_sent = self.router.reactor.seconds()
            self.transport.write(data)

    def send_raw(self, data: bytes) -> None:
        """Write already-encoded frames (one encoding shared by many peers)."""
        if not self.closed:
            self.bytes_out += len(data)
            self.last_sent = self.router.reactor.seconds()
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:
        self._cancel_handshake_timer()
        self.closed = True
        if self.identity is None and reason is not None and not reason.check(ConnectionDone):
            count = self._unverified("pre_tls_failures" if self.tls else "pre_hello_failures")
            if worth_logging(count) and not self.timed_out:  # (a timeout said so already)
                self.log.info("connection with {peer} closed before {what} completed: {why} "
                              "({count} so far)", peer=self.peer,
                              what="TLS" if self.tls else "HELLO",
                              why=reason.getErrorMessage(), count=count)
        # Routers hear of unverified sessions too (identity None): a daemon
        # must know its attempt failed.
        self.router.sessionClosed(self, reason)

    def _cancel_handshake_timer(self) -> None:
        if self._handshake_timer is not None and self._handshake_timer.active():
            self._handshake_timer.cancel()
        self._handshake_timer = None


class SessionFactory(Factory):
    """Builds a FrameSession around one router for every connection, and
    counts the connections that ended before their handshake completed:
    ``pre_tls_failures`` (``pre_hello_failures`` on a local socket) and,
    among them, ``handshake_timeouts``."""

    def __init__(self, router: Router, tls: bool = True,
                 count: Callable[[str], None] | None = None) -> None:
        self.router = router
        self.tls = tls
        #: The router's counters (the controller's `seer status`), if given.
        self.count = count
        self.unverified_counts: Counter[str] = Counter()

    def unverified(self, name: str) -> int:
        """One more connection that ended unverified; how many so far."""
        self.unverified_counts[name] += 1
        if self.count is not None:
            self.count(name)
        return self.unverified_counts[name]

    def buildProtocol(self, addr: Any) -> FrameSession:
        session = FrameSession(self.router, self.tls)
        session.factory = self
        return session
