"""A daemon's link to the controller: one mutual-TLS connection, kept up.

The link connects (Twisted's ClientService, with jittered exponential
backoff), checks that the peer is the experiment's controller, sends the
daemon's INFO as soon as the host's addresses are known, and waits for the
WELCOME -- a connection that brings none within WELCOME_TIMEOUT, or closes
before one, is dropped and counts towards the backoff like a failed
connect.  Frames that answer the daemon's own requests (TABLE, FETCH ...)
fire their Deferreds; the others go to the daemon.

Once welcomed, the link sends heartbeats when idle and drops a connection
on which the controller has been silent for the heartbeat timeout (both as
the WELCOME says), then reconnects; a PING from the same controller heard
while disconnected -- the network is back -- makes it try again at once
instead of waiting out its backoff.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Callable

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import endpoints, task
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.net.heartbeat import Heartbeat
from backend.net.session import FrameSession, SessionFactory
from seer.protocol.wire import Frame, WireError

log = Logger()

#: How long to wait for WELCOME after the TLS handshake before retrying.
WELCOME_TIMEOUT = 20.0


class ControllerLink(service.MultiService):
    """The router of the daemon's TLS session (see backend.net.session)."""

    def __init__(
        self,
        reactor: Any,
        address: tuple[str, int] | None,
        tls_options: Any,
        *,
        on_frame: Callable[[FrameSession, Frame], None],
        info: Callable[[], dict[str, Any] | None],
        on_lost: Callable[[], None],
        count: Callable[[str], None],
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.setName("controller-link")
        self.reactor = reactor
        self.address = address
        self.tls_options = tls_options
        self.on_frame = on_frame
        self.info = info
        self.on_lost = on_lost
        self.count = count
        # Jitter spreads a thousand daemons' reconnections after a controller
        # restart instead of having them arrive in the same millisecond.
        self.retry_policy = backoffPolicy(
            retry_initial, retry_max, 2.0,
            jitter=jitter or (lambda: random.random() * retry_initial),
        )
        #: The welcomed session, or None while (re)connecting.
        self.session: FrameSession | None = None
        #: Connections in a row that closed before a WELCOME (for the backoff).
        self._unwelcomed = 0
        #: Sessions that wait for the host's addresses before their INFO.
        self._info_waiting: list[FrameSession] = []
        self._requests: dict[int, Deferred] = {}
        self._request_ids = itertools.count(1)
        self.heartbeat = Heartbeat()
        self._beats = task.LoopingCall(self._check_heartbeat)
        self._beats.clock = reactor
        self._client: ClientService | None = None
        self._restarting = False
        self._last_restart = float("-inf")

    def startService(self) -> None:
        if self.address is not None:
            self.bind(self.address)
        super().startService()
        self._beats.start(1.0, now=False)

    def bind(self, address: tuple[str, int]) -> None:
        """Keep connected to the controller at ``address`` (given, or found
        by discovery); a link bound elsewhere before moves there."""
        if self._client is not None:
            if self.address == address:
                return
            self._client.disownServiceParent()
        self.address = address
        host, port = address
        endpoint = endpoints.SSL4ClientEndpoint(self.reactor, host, port, self.tls_options,
                                                timeout=10)
        # No prepareConnection: Twisted's ClientService has no transition for
        # a connection lost while it is pending, and would never retry.  The
        # WELCOME timeout and the backoff across unwelcomed connections are
        # kept here instead.
        self._client = ClientService(endpoint, SessionFactory(self),
                                     retryPolicy=self.retry_delay, clock=self.reactor)
        self._client.setServiceParent(self)

    def stopService(self) -> Deferred:
        if self._beats.running:
            self._beats.stop()
        return super().stopService()

    def _check_heartbeat(self) -> None:
        session = self.session
        if session is None:
            return
        silent = self.heartbeat.beat(session, self.reactor.seconds())
        if silent is not None:
            self.count("controller_silent")
            log.warn("nothing from the controller for {silent:.1f} s (the connection is open "
                     "but silent); reconnecting", silent=silent)
            session.transport.abortConnection()

    def reconnect_now(self) -> None:
        """The controller is reachable again (its PING came): skip the backoff.

        At most once a second, and never while a restart is under way."""
        now = self.reactor.seconds()
        if (self.session is not None or self._restarting or self._client is None
                or not self.running or now - self._last_restart < 1.0):
            return
        self._restarting = True
        self._last_restart = now
        self._unwelcomed = 0

        def again(_: Any) -> None:
            self._restarting = False
            if self.running and not self._client.running:
                self._client.startService()

        self._client.stopService().addBoth(again)

    def retry_delay(self, attempt: int) -> float:
        # ClientService counts failed TCP connects only; a connection that
        # closes before WELCOME (bad certificate, overloaded controller) must
        # back off too.
        return self.retry_policy(max(attempt, self._unwelcomed))

    # -- INFO ----------------------------------------------------------------------------

    def info_ready(self) -> None:
        """The host's addresses are known: send INFO on the sessions that wait."""
        waiting, self._info_waiting = self._info_waiting, []
        for session in waiting:
            self._send_info(session)

    def _send_info(self, session: FrameSession) -> None:
        if session.closed:
            return
        info = self.info()
        if info is None:
            self._info_waiting.append(session)
            return
        try:
            session.send(info)
        except Exception:
            log.failure("cannot send INFO to the controller; closing to try again")
            session.close()

    def welcomed(self, session: FrameSession, heartbeat: Heartbeat | None = None) -> None:
        """The controller welcomed this session: it is the link now."""
        self.session = session
        if heartbeat is not None:
            self.heartbeat = heartbeat
        session.state["welcomed"] = True
        self._unwelcomed = 0
        timer = session.state.pop("welcome_timer", None)
        if timer is not None and timer.active():
            timer.cancel()

    # -- router interface --------------------------------------------------------------

    def sessionOpened(self, session: FrameSession) -> None:
        session.state["welcome_timer"] = self.reactor.callLater(
            WELCOME_TIMEOUT, session.transport.abortConnection)
        if session.identity.role != "controller":
            log.error("{peer} presented a {role} certificate, not the controller's; closing",
                      peer=session.peer, role=session.identity.role)
            session.close()
            return
        self._send_info(session)

    def frameReceived(self, session: FrameSession, frame: Frame) -> None:
        waiting = self._requests.pop(frame.get("id"), None) if frame.get("id") else None
        if waiting is None:
            self.on_frame(session, frame)
        elif frame.type == "ERROR":
            waiting.errback(RuntimeError(f"controller: {frame.get('error')}"))
        else:
            waiting.callback(frame)

    def sessionClosed(self, session: FrameSession, reason: Failure) -> None:
        timer = session.state.pop("welcome_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        why = reason.getErrorMessage() if reason is not None else "closed"
        if not session.state.get("welcomed"):
            self._unwelcomed += 1
            log.warn("connection to the controller closed before WELCOME ({why}); retrying",
                     why=why)
        if self.session is session:
            self.session = None
            log.info("connection to the controller lost ({why}); reconnecting", why=why)
            self.on_lost()
        if self.session is None:
            requests, self._requests = self._requests, {}
            for d in requests.values():
                d.errback(RuntimeError("the connection to the controller closed"))

    def badInput(self, session: FrameSession, error: WireError) -> None:
        self.count(f"bad_frames_{error.reason}")
        log.warn("bad frame from the controller: {error}", error=str(error))

    # -- sending -------------------------------------------------------------------------

    def send(self, header: dict[str, Any], blob: bytes = b"") -> bool:
        """Send a frame on the welcomed session; False when there is none."""
        if self.session is None:
            return False
        self.session.send(header, blob)
        return True

    def request(self, header: dict[str, Any]) -> Deferred:
        """Ask the controller something; fires with its reply frame."""
        if self.session is None:
            return fail(RuntimeError("not connected to the controller"))
        request_id = next(self._request_ids)
        d: Deferred = Deferred()
        self._requests[request_id] = d
        self.session.send(dict(header, id=request_id))
        return d
