"""Report datagrams at the controller: each node's acknowledgement and outcomes by UDP.

Every registered node gets a report session at its WELCOME -- an id, a key
of its own, the UDP port to send to (seer/protocol/reports.py has the
format).  A datagram is checked against its session's key and a replay
window (the latest 64 sequence numbers), then handled like the same fields
of a TLS REPORT.  Those that carried outcomes are confirmed to the node
over TLS, at most every CONFIRM_EVERY seconds per node in one REPORTED
frame; the node sends again over TLS whatever was not confirmed, so an
outcome lost with its datagram is late, never lost.  A session ends with
the node's TLS connection: its datagrams are then refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from backend.net.multicast import grow_receive_buffer
from backend.net.session import worth_logging
from seer.protocol.mac import KeyedMac
from seer.protocol.reports import decode_report, report_session
from seer.protocol.wire import WireError

log = Logger()

#: Seconds between REPORTED frames to one node (they confirm every datagram since).
CONFIRM_EVERY = 0.25
#: Sequence numbers below the highest seen that may still come (reordered).
WINDOW = 64


@dataclass
class Session:
    node: str
    id: int
    key: bytes
    highest: int = 0
    #: Bit i set: seq ``highest - i`` was seen.
    seen: int = 0
    #: Seqs of datagrams with outcomes, to confirm in the next REPORTED.
    confirm: list[int] = field(default_factory=list)
    mac: KeyedMac = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.mac = KeyedMac(self.key)

    def accept(self, seq: int) -> bool:
        """Whether ``seq`` is new (not a replay, not too old); records it."""
        if seq > self.highest:
            shift = seq - self.highest
            self.seen = ((self.seen << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            self.highest = seq
            return True
        back = self.highest - seq
        if seq <= 0 or back >= WINDOW or self.seen >> back & 1:
            return False
        self.seen |= 1 << back
        return True


class ReportReceiver(DatagramProtocol):
    """The controller's report port (a child service listens on it)."""

    def __init__(self, controller: Any) -> None:
        self.c = controller
        self._sessions: dict[int, Session] = {}
        self._by_node: dict[str, Session] = {}
        self._confirm_call: Any = None

    def startProtocol(self) -> None:
        # A command to a thousand nodes brings a thousand reports at once: in
        # the default 208 kB buffer about 8 in 1,000 were dropped, each then
        # resent over TLS only after the node's RESEND_AFTER (1.5 s).
        grow_receive_buffer(self.transport.socket)

    # -- sessions ---------------------------------------------------------------------

    def open(self, node: str) -> dict[str, Any] | None:
        """A new report session for ``node`` (it registered): what its WELCOME says."""
        port = self.transport.getHost().port if self.transport is not None else None
        if port is None:
            return None
        self.close(node)
        session = Session(node, int.from_bytes(os.urandom(8), "big"), os.urandom(32))
        self._sessions[session.id] = session
        self._by_node[node] = session
        return {"port": port, "session": session.id, "key": session.key.hex()}

    def close(self, node: str) -> None:
        """``node``'s connection closed: its datagrams are refused from now on."""
        session = self._by_node.pop(node, None)
        if session is not None:
            self._sessions.pop(session.id, None)

    # -- datagrams ------------------------------------------------------------------------

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            session_id, seq = report_session(data)
            session = self._sessions.get(session_id)
            if session is None:
                raise WireError("session", "no such report session (the node's connection "
                                           "closed, or it was never given one)")
            body = decode_report(session.mac, data)
        except WireError as e:
            self._drop(e.reason, str(e), addr)
            return
        if not session.accept(seq):
            self._drop("replay", f"report {seq} of {session.node} seen before", addr)
            return
        self.c.node_desk.apply_report(session.node, body)
        if body.get("outcomes"):
            session.confirm.append(seq)
            if self._confirm_call is None or not self._confirm_call.active():
                self._confirm_call = self.c.reactor.callLater(CONFIRM_EVERY, self._confirm)

    def _drop(self, reason: str, detail: str, addr: Any) -> None:
        key = f"dropped_reports_{reason}"
        self.c.count(key)
        count = self.c.counters[key]
        if worth_logging(count):
            log.warn("dropped a report datagram from {addr} ({reason}; {count} so far): "
                     "{detail}", addr=addr, reason=reason, count=count, detail=detail)

    def _confirm(self) -> None:
        """One REPORTED frame per node with the datagrams received since the last."""
        self._confirm_call = None
        for node, session in self._by_node.items():
            if session.confirm:
                link = self.c.node_sessions.get(node)
                if link is not None:
                    link.send({"type": "REPORTED", "seqs": session.confirm})
                session.confirm = []

    def stop(self) -> None:
        if self._confirm_call is not None and self._confirm_call.active():
            self._confirm_call.cancel()
        self._confirm_call = None
