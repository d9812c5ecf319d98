"""The Poller base class: one kind of reading, taken every interval (Gauge's shape).

Faucet's Gauge pollers run a loop of ``send_req`` (ask for a reading),
wait an interval, and ``no_response`` if the answer did not come; the
answer arrives in ``update``.  SEER's pollers keep that shape on the
injected clock:

* ``start(offset)`` takes the first reading after ``offset`` seconds (by
  default a random part of the interval, so that a hundred nodes started
  together do not all read in step), then one every ``interval``, without
  drift;
* ``send_req()`` takes a reading: a subclass reads its files and calls
  ``update`` at once, or asks something (netlink) and calls ``update``
  when the answer comes;
* a reading still pending when the next is due is a ``no_response`` --
  counted, and sent to the controller with every STATS frame, so it shows;
* ``update(rcv_time, data)`` hands the reading to the daemon's collector.

A reading (``data``) is a list of series ``[labels, values]``: ``labels``
a dict of strings (``{"interface": "eth1"}``), ``values`` a dict of
numbers.  A value whose name ends in ``_total`` is a counter (it only
grows, except when what it counts restarts); any other is a gauge.  The
metric a value becomes is ``seer_<NAME>_<value name>``.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable, ClassVar

from twisted.logger import Logger

log = Logger()

#: labels, values
Series = list[Any]
Reading = list[Series]


#: What every STATS frame says of each poller, as the controller exposes it:
#: ``seer_poller_<name>{node, poller}`` -- (unit, help).
STATUS_METRICS = {
    "readings_total": ("readings", "readings the poller took"),
    "no_response_total": ("readings", "readings that did not come within the interval"),
    "errors_total": ("readings", "readings that failed (the poller raised)"),
    "cpu_seconds_total": ("seconds", "CPU the poller used in the daemon's reactor thread"),
}


class Poller:
    """Base of every poller; subclasses set NAME and METRICS and implement send_req."""

    #: The kind of reading, and the metric namespace: ``seer_<NAME>_...``.
    NAME: ClassVar[str] = ""
    #: value name -> (unit, labels, help): what the poller sends, for the
    #: docs and for the test that checks them against each other.
    METRICS: ClassVar[dict[str, tuple[str, tuple[str, ...], str]]] = {}
    #: Seconds between readings unless the daemon is told otherwise.
    INTERVAL: ClassVar[float] = 1.0

    def __init__(self, node: Any, clock: Any, interval: float | None = None,
                 rng: random.Random | None = None) -> None:
        #: What the poller may read of its daemon (see NodeView).
        self.node = node
        self.clock = clock
        self.interval = float(interval if interval is not None else self.INTERVAL)
        self.rng = rng or random.Random()
        #: Called with (poller, rcv_time, reading) for every reading.
        self.on_reading: Callable[[Poller, float, Reading], None] = lambda p, t, r: None
        self.reply_pending = False
        self.readings = 0
        self.no_responses = 0
        self.errors = 0
        #: CPU seconds this poller used in the reactor thread (send_req and update).
        self.cpu_seconds = 0.0
        self._call: Any = None
        self._next = 0.0

    # -- the loop ---------------------------------------------------------------------

    def start(self, offset: float | None = None) -> None:
        """First reading after ``offset`` s (default: a random part of the interval)."""
        if self.running():
            return
        if offset is None:
            offset = self.rng.uniform(0, self.interval)
        self._next = self.clock.seconds() + offset
        self._call = self.clock.callLater(offset, self._tick)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self.reply_pending = False

    def running(self) -> bool:
        """Whether the poller is taking readings."""
        return self._call is not None

    def next_reading(self) -> float:
        """When the next reading is due (the clock's time; the current one's
        while its tick runs)."""
        return self._next

    def _tick(self) -> None:
        if self.reply_pending:
            self.no_response()
        self.reply_pending = True
        started = time.thread_time()
        try:
            self.send_req()
        except Exception:
            # A poller that breaks is counted and tried again next interval;
            # it never stops the daemon or the other pollers.
            self.reply_pending = False
            self.errors += 1
            if self.errors == 1 or self.errors % 100 == 0:
                log.failure("poller {name}: reading failed ({n} so far)", name=self.NAME,
                            n=self.errors)
        self.cpu_seconds += time.thread_time() - started
        # Drift-free: readings stay at start + k * interval however long this took.
        now = self.clock.seconds()
        self._next += self.interval
        if self._next < now:  # the reactor was held up: skip the readings missed
            self._next += math.ceil((now - self._next) / self.interval) * self.interval
        self._call = self.clock.callLater(self._next - now, self._tick)

    # -- what subclasses implement ----------------------------------------------------

    def send_req(self) -> None:
        """Take a reading; call :meth:`update` with it (now or when it comes)."""
        raise NotImplementedError

    def update(self, rcv_time: float, data: Reading) -> None:
        """A reading came in: hand it to the collector."""
        self.reply_pending = False
        self.readings += 1
        self.on_reading(self, rcv_time, data)

    def no_response(self) -> None:
        """The last reading did not come within the interval."""
        self.no_responses += 1
        if self.no_responses == 1 or self.no_responses % 100 == 0:
            log.warn("poller {name}: no reading within {interval} s ({n} so far)",
                     name=self.NAME, interval=self.interval, n=self.no_responses)

    def close(self) -> None:
        """Release what the poller holds (a socket); called after stop."""

    def status(self) -> dict[str, Any]:
        """What the STATS frame says of this poller."""
        return {"interval": self.interval, "readings": self.readings,
                "no_response": self.no_responses, "errors": self.errors,
                "cpu_seconds_total": round(self.cpu_seconds, 6)}
