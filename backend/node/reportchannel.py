"""A node's report datagrams to its controller: outcomes by UDP, under its own key.

The controller's WELCOME gives the node a report session (an id, a key of
its own, a UDP port; seer/protocol/reports.py has the format).  The
channel sends each small report as one datagram from the node's control
interface to the controller's address; the Reporter keeps what was not yet
confirmed and sends it again over TLS (backend/node/reporter.py).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from seer.protocol.mac import KeyedMac
from seer.protocol.reports import encode_report

log = Logger()


class ReportChannel(DatagramProtocol):
    def __init__(self, controller_host: str, port: int, session: int, key: bytes) -> None:
        self.address = (controller_host, port)
        self.session = session
        self.mac = KeyedMac(key)
        self.seq = 0
        self.sent = 0
        self._to = self.address

    @classmethod
    def from_welcome(cls, controller_host: str, given: Any) -> ReportChannel | None:
        """The channel a WELCOME's ``report`` describes, or None if it has none usable."""
        try:
            port, session, key = int(given["port"]), int(given["session"]), \
                bytes.fromhex(given["key"])
        except (TypeError, KeyError, ValueError):
            return None
        if not (0 < port < 65536 and 0 <= session < 2**64 and len(key) >= 16):
            return None
        return cls(controller_host, port, session, key)

    def startProtocol(self) -> None:
        # Connected: the kernel keeps the route, and a write checks no address.
        try:
            self.transport.connect(*self.address)
            self._to: tuple[str, int] | None = None
        except ValueError:  # a host name, not an address: give it to every write
            self._to = self.address

    def send(self, body: dict[str, Any]) -> int | None:
        """Send ``body`` as the next report datagram; its seq, or None if it
        does not fit in one (or the socket refused it): send it by TLS."""
        data = encode_report(self.mac, self.session, self.seq + 1, body)
        if data is None or self.transport is None:
            return None
        try:
            self.transport.write(data, self._to) if self._to else self.transport.write(data)
        except OSError as e:  # no route, a full buffer, refused: TLS will carry it
            log.warn("report datagram to {addr} not sent ({error}); using TLS",
                     addr=self.address, error=str(e))
            return None
        self.seq += 1
        self.sent += 1
        return self.seq
