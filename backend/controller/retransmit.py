"""The controller's retransmit window: recent datagrams kept for repairs.

Every datagram sent to the experiment is kept for ``max_age`` seconds (SEER's
two minutes) so that a node that missed it can ask for it again.  After that
it is retired (``retireSerials``): a node still missing it is too far behind
and gets a state snapshot instead.

The window also decides how a NACK is answered (:meth:`RetransmitWindow.repairs_for`):
with the datagrams asked for, or -- when some are retired, or so many are
wanted that a snapshot is cheaper -- not at all, and the node gets a snapshot.

Time is passed in explicitly, so retirement is tested with numbers.
"""

from __future__ import annotations

from collections import deque

from seer.protocol.messages import RETIRE_AFTER

#: The most serials one NACK may ask for; more and a snapshot is cheaper.
MAX_REPAIR = 5000


class RetransmitWindow:
    def __init__(self, max_age: float = RETIRE_AFTER, max_entries: int = 500_000) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        # (sent_at, first_serial, last_serial, datagram), oldest first.
        self._entries: deque[tuple[float, int, int, bytes]] = deque()
        self._by_serial: dict[int, bytes] = {}

    def __len__(self) -> int:
        return len(self._by_serial)

    def add(self, first: int, last: int, datagram: bytes, now: float) -> None:
        """Keep ``datagram``, which carries serials first..last."""
        self._entries.append((now, first, last, datagram))
        for serial in range(first, last + 1):
            self._by_serial[serial] = datagram
        while len(self._by_serial) > self.max_entries:
            self._drop_oldest()

    def get(self, serial: int) -> bytes | None:
        return self._by_serial.get(serial)

    @property
    def oldest(self) -> int | None:
        """The oldest serial still retransmittable, or None when empty."""
        return self._entries[0][1] if self._entries else None

    def retire(self, now: float) -> int:
        """Drop entries older than ``max_age``; return the serials retired."""
        retired = 0
        while self._entries and now - self._entries[0][0] > self.max_age:
            retired += self._drop_oldest()
        return retired

    def _drop_oldest(self) -> int:
        _, first, last, _ = self._entries.popleft()
        for serial in range(first, last + 1):
            self._by_serial.pop(serial, None)
        return last - first + 1

    def covers(self, first: int, last: int) -> bool:
        """Whether every serial first..last is still here."""
        oldest = self.oldest
        if oldest is None or first < oldest:
            return False
        return all(serial in self._by_serial for serial in range(first, last + 1))

    def repairs_for(self, ranges: list[tuple[int, int]]) -> list[bytes] | None:
        """The datagrams that repair ``ranges`` (each once, in order), or None
        when a snapshot must do instead: a serial retired, or more than
        MAX_REPAIR asked for."""
        wanted = sum(hi - lo + 1 for lo, hi in ranges)
        if wanted > MAX_REPAIR or not all(self.covers(lo, hi) for lo, hi in ranges):
            return None
        datagrams: list[bytes] = []
        seen: set[int] = set()
        for lo, hi in ranges:
            for serial in range(lo, hi + 1):
                datagram = self._by_serial[serial]
                if id(datagram) not in seen:
                    seen.add(id(datagram))
                    datagrams.append(datagram)
        return datagrams
