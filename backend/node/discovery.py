"""Finding the controller from its PINGs (SEER's pingExperiment: "so they can find us").

A daemon started without a controller address listens on its multicast
group: every PING says where the controller's TLS listener is.  Before the
daemon has the experiment's keys it cannot verify a PING, so the address
is only a candidate: a probe connects there and trusts it only if the TLS
handshake shows the experiment's controller certificate (the CA and the
name ``seer-controller``), then the link binds to it.  A forged PING that
points elsewhere fails its probe, is logged, and is not tried again for a
while -- and since probes run side by side, it delays no one: the genuine
PING of the next second is probed meanwhile.  A probe that neither
completes nor fails gives up after PROBE_TIMEOUT.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.net.session import FrameSession, SessionFactory
from seer.config import ConfigError, parse_hostport
from seer.protocol.wire import Frame, WireError

log = Logger()

#: Seconds a probe may take (TCP connect and TLS handshake).
PROBE_TIMEOUT = 3.0
#: Seconds an address whose probe failed is not probed again.
BAD_FOR = 30.0
#: Probes under way at most (the rest wait for a later PING).
MAX_PROBES = 8


class _Probe:
    """The router of one probing TLS connection: did the controller answer?"""

    def __init__(self, discovery: Discovery, address: tuple[str, int]) -> None:
        self.discovery = discovery
        self.address = address
        self.reactor = discovery.reactor
        self.verified = False
        self.timer: Any = None

    def sessionOpened(self, session: FrameSession) -> None:
        self.verified = session.identity.role == "controller"
        session.close()

    def frameReceived(self, session: FrameSession, frame: Frame) -> None:
        pass

    def badInput(self, session: FrameSession, error: WireError) -> None:
        pass

    def sessionClosed(self, session: FrameSession, reason: Failure) -> None:
        self.discovery.probed(self, reason.getErrorMessage() if reason is not None else "closed")


class Discovery:
    def __init__(self, reactor: Any, tls_options: Any,
                 found: Callable[[tuple[str, int]], None]) -> None:
        self.reactor = reactor
        self.tls_options = tls_options
        self.found = found
        self._probing: dict[tuple[str, int], _Probe] = {}
        self._bad: dict[tuple[str, int], float] = {}

    def consider(self, text: Any) -> None:
        """A PING said the controller listens at ``text`` (HOST:PORT)."""
        try:
            address = parse_hostport(str(text), "controller address in a PING")
        except ConfigError:
            return
        now = self.reactor.seconds()
        if address in self._probing or self._bad.get(address, float("-inf")) > now \
                or len(self._probing) >= MAX_PROBES:
            return
        probe = _Probe(self, address)
        self._probing[address] = probe
        endpoint = endpoints.SSL4ClientEndpoint(self.reactor, address[0], address[1],
                                                self.tls_options, timeout=PROBE_TIMEOUT)
        d = endpoint.connect(SessionFactory(probe))
        d.addCallback(self._connected, probe)
        d.addErrback(lambda f: self.probed(probe, f.getErrorMessage()))

    def _connected(self, session: FrameSession, probe: _Probe) -> None:
        # A peer that accepts TCP but never finishes the handshake.
        probe.timer = self.reactor.callLater(PROBE_TIMEOUT, session.transport.abortConnection)

    def probed(self, probe: _Probe, why: str) -> None:
        if self._probing.get(probe.address) is not probe:
            return
        del self._probing[probe.address]
        if probe.timer is not None and probe.timer.active():
            probe.timer.cancel()
        host, port = probe.address
        if probe.verified:
            log.info("found the controller at {host}:{port} (its PING; TLS showed the "
                     "experiment's controller certificate)", host=host, port=port)
            self.found(probe.address)
            return
        self._bad[probe.address] = self.reactor.seconds() + BAD_FOR
        log.warn("a PING pointed at {host}:{port}, which is not this experiment's controller "
                 "({why}); ignored for {bad:.0f} s", host=host, port=port, why=why, bad=BAD_FOR)

    def cancel(self) -> None:
        for probe in list(self._probing.values()):
            if probe.timer is not None and probe.timer.active():
                probe.timer.cancel()
        self._probing.clear()
