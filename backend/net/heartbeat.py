"""Heartbeats on a TLS frame session: a silent peer is noticed.

A TCP connection can stay open while nothing gets through (a partition
that drops packets without resetting anything).  So each side of a
daemon's link sends a HEARTBEAT frame when it has sent nothing else for
``interval`` seconds, and takes the peer for unreachable when nothing at
all came from it for ``timeout`` seconds.  Any frame counts as a sign of
life; HEARTBEAT frames themselves go no further than the session.
"""

from __future__ import annotations

from dataclasses import dataclass

from seer.protocol.messages import HEARTBEAT_INTERVAL as INTERVAL
from seer.protocol.messages import HEARTBEAT_TIMEOUT as TIMEOUT
from seer.protocol.wire import encode_frame

__all__ = ["HEARTBEAT", "HEARTBEAT_FRAME", "INTERVAL", "TIMEOUT", "Heartbeat"]
HEARTBEAT = "HEARTBEAT"
#: Encoded once: the controller sends it to every idle node session.
HEARTBEAT_FRAME = encode_frame({"type": HEARTBEAT})


@dataclass(frozen=True)
class Heartbeat:
    interval: float = INTERVAL
    timeout: float = TIMEOUT

    def beat(self, session, now: float) -> float | None:
        """Send a heartbeat on ``session`` if it has been idle; return how long
        the peer has been silent if that is longer than the timeout (else None)."""
        if now - session.last_sent >= self.interval:
            session.send_raw(HEARTBEAT_FRAME)
        silent = now - session.last_received
        return silent if silent > self.timeout else None
