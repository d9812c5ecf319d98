"""Polling a reading until it says what we wait for.

Some conditions can only be read, not awaited: an agent's counters, a
node's stats.  :func:`poll` is the one loop for them (the client's
``wait_until`` and ``wait_for_counter``, the end-to-end tests' waits): it
reads, checks, and sleeps ``interval`` between reads until ``timeout``.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def poll(read: Callable[[], T], holds: Callable[[T], object], *, timeout: float,
         interval: float = 0.5) -> tuple[T, bool]:
    """Call ``read()`` until ``holds(value)`` is true or ``timeout`` seconds
    passed; returns the last value read and whether it held.  It is read at
    least once, and the last time at or after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if holds(value):
            return value, True
        if time.monotonic() >= deadline:
            return value, False
        time.sleep(interval)
