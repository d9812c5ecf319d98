"""In-order, exactly-once delivery of numbered messages (node side).

The Serializer sits between verification and the Scheduler.  Messages arrive
by multicast in any order, some twice, some never; it delivers each serial
exactly once, in order:

* a serial already delivered (or already held) is a duplicate and dropped --
  this is also what refuses a replayed datagram;
* a serial "from the future" is held until the gap before it is filled;
* a gap is known from later serials and from the controller's PING (which
  carries its current serial), and :meth:`due_repairs` says which serials to
  ask the controller for, and when to ask again;
* a node too far behind is given a snapshot at serial S: :meth:`skip_to`.

It is a plain state machine: no reactor, no clock; ``now`` is an argument.
"""

from __future__ import annotations

from typing import Any

Numbered = tuple[int, Any]


class Serializer:
    def __init__(
        self,
        next_serial: int = 1,
        *,
        max_held: int = 100_000,
        retry_after: float = 0.25,
        max_retry_after: float = 2.0,
    ) -> None:
        self.next = next_serial
        self.known_upto = next_serial - 1
        self.max_held = max_held
        self.base_retry = retry_after
        self.max_retry = max_retry_after
        self.held: dict[int, Any] = {}
        self.duplicates = 0
        self.delivered = 0
        self.overflowed = 0
        self._retry = retry_after
        self._last_request_at: float | None = None
        self._asked_upto = next_serial - 1
        self._next_at_last_request = next_serial

    @property
    def delivered_upto(self) -> int:
        """The last serial delivered in order: the cumulative acknowledgement."""
        return self.next - 1

    def receive(self, numbered: list[Numbered]) -> list[Numbered]:
        """Accept messages; return those now deliverable, in serial order."""
        out: list[Numbered] = []
        for serial, message in numbered:
            if serial < self.next or serial in self.held:
                self.duplicates += 1
                continue
            if serial > self.known_upto:
                self.known_upto = serial
            if serial == self.next:
                out.append((serial, message))
                self.next += 1
                self._drain(out)
            elif len(self.held) < self.max_held:
                self.held[serial] = message
            else:
                # Dropped for now; it stays in the gap and gets repaired.
                self.overflowed += 1
        self.delivered += len(out)
        return out

    def observe(self, current_serial: int) -> None:
        """The controller says serials up to ``current_serial`` exist."""
        if current_serial > self.known_upto:
            self.known_upto = current_serial

    def skip_to(self, serial: int) -> list[Numbered]:
        """A snapshot brought this node to ``serial``: continue after it.

        Returns held messages that became deliverable.  A snapshot older than
        what was already delivered in order changes nothing.
        """
        if serial < self.next:
            return []
        for s in [s for s in self.held if s <= serial]:
            del self.held[s]
        self.next = serial + 1
        self.known_upto = max(self.known_upto, serial)
        out: list[Numbered] = []
        self._drain(out)
        self.delivered += len(out)
        return out

    def _drain(self, out: list[Numbered]) -> None:
        held = self.held
        while self.next in held:
            out.append((self.next, held.pop(self.next)))
            self.next += 1

    def gaps(self) -> list[tuple[int, int]]:
        """Missing serials as inclusive (low, high) ranges, oldest first."""
        if self.known_upto < self.next:
            return []
        ranges = []
        low = self.next
        for serial in sorted(s for s in self.held if s <= self.known_upto):
            if serial > low:
                ranges.append((low, serial - 1))
            low = serial + 1
        if low <= self.known_upto:
            ranges.append((low, self.known_upto))
        return ranges

    @property
    def missing(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.gaps())

    def due_repairs(self, now: float) -> list[tuple[int, int]]:
        """Ranges to ask the controller for now.

        A gap is asked for as soon as it is seen.  What was already asked for
        is asked again only after the retry interval, which doubles while no
        progress is made (up to ``max_retry_after``) and resets on progress.
        """
        gaps = self.gaps()
        if not gaps:
            self._last_request_at = None
            self._retry = self.base_retry
            return []
        if self._last_request_at is None or now - self._last_request_at >= self._retry:
            if self._last_request_at is not None:
                progressed = self.next > self._next_at_last_request
                self._retry = (
                    self.base_retry if progressed else min(self._retry * 2, self.max_retry)
                )
            self._last_request_at = now
            self._next_at_last_request = self.next
            self._asked_upto = self.known_upto
            return gaps
        fresh = [
            (max(lo, self._asked_upto + 1), hi) for lo, hi in gaps if hi > self._asked_upto
        ]
        if fresh:
            self._asked_upto = self.known_upto
        return fresh

    def next_retry_in(self, now: float) -> float | None:
        """Seconds until :meth:`due_repairs` would ask again, or None."""
        if self._last_request_at is None or not self.gaps():
            return None
        return max(0.0, self._last_request_at + self._retry - now)
