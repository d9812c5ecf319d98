"""Hold messages until their ``time`` (node side).

A message without a ``time``, or whose time has come, passes straight to the
Dispatcher.  A message with a future ``time`` (seconds since the Unix epoch,
by the node's clock) waits; messages due at the same moment go in serial
order.  So an experiment can say "flood at t=60" and still adjust a variable
now: later immediate messages do not queue behind a scheduled one.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Scheduler:
    def __init__(
        self, clock: IReactorTime, deliver: Callable[[int, dict[str, Any]], None]
    ) -> None:
        self._clock = clock
        self._deliver = deliver
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._timer: IDelayedCall | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def submit(self, serial: int, message: dict[str, Any]) -> None:
        when = message.get("time")
        if not isinstance(when, (int, float)) or when <= self._clock.seconds():
            self._deliver(serial, message)
            return
        heapq.heappush(self._heap, (float(when), serial, message))
        self._arm()

    def pending(self) -> list[tuple[float, int]]:
        """(time, serial) of every held message, earliest first."""
        return sorted((t, s) for t, s, _ in self._heap)

    def cancel(self) -> None:
        """Forget everything held (daemon shutdown)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._heap.clear()

    def _arm(self) -> None:
        if not self._heap:
            return
        due = self._heap[0][0]
        if self._timer is not None and self._timer.active():
            if self._timer.getTime() <= due:
                return
            self._timer.cancel()
        self._timer = self._clock.callLater(
            max(0.0, due - self._clock.seconds()), self._fire
        )

    def _fire(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        while self._heap and self._heap[0][0] <= now:
            _, serial, message = heapq.heappop(self._heap)
            self._deliver(serial, message)
        self._arm()
