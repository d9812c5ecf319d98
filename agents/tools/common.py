"""What the tool programs share: the paced send loop of the generators, the
start-up and shutdown of the servers, and their JSON result lines.

The generators (cbr, flood) send with :func:`pace`; the servers (http, ftp,
dns) are run by :func:`server_main`.  Every line an agent reads from a tool
is one JSON object on standard output, flushed at once so that the agent
sees it while the tool runs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Behind by more than this (seconds), the loop starts again from now instead
#: of bursting to catch up: a rate held for the rest of the run beats a spike.
GIVE_UP_CATCHING_UP = 0.5


def emit(kind: str, **data: Any) -> None:
    """Print one result line, ``{kind: data}``, for the agent."""
    print(json.dumps({kind: data}), flush=True)


@dataclass(frozen=True)
class Paced:
    """What a paced run did."""

    sent: int
    errors: int
    seconds: float


def pace(interval: float, duration: float, send: Callable[[int], object], *, burst: int = 1,
         count: int = 0, clock: Callable[[], float] = time.perf_counter,
         sleep: Callable[[float], object] = time.sleep) -> Paced:
    """Call ``send(n)`` -- n is the number sent so far -- once every
    ``interval`` seconds for ``duration`` seconds, or until ``count`` sends
    succeeded (0: no limit).

    An OSError from ``send`` (a full socket buffer, say) counts as an error,
    not as a packet.  Late by several intervals, the loop sends up to
    ``burst`` packets at once to keep the average rate; more than
    GIVE_UP_CATCHING_UP late, it does not catch up at all.
    """
    start = clock()
    end = start + duration
    sent = errors = 0
    next_at = start
    while True:
        now = clock()
        if now >= end or (count and sent >= count):
            break
        if now < next_at:
            gap = next_at - now
            # Sleep through most of the gap and spin the last millisecond:
            # sleep() wakes up late by up to a millisecond or so.
            if gap > 0.002:
                sleep(gap - 0.001)
            continue
        due = min(int((now - next_at) / interval) + 1, burst)
        for _ in range(due):
            try:
                send(sent)
                sent += 1
            except OSError:
                errors += 1
            if count and sent >= count:
                break
        next_at += due * interval
        if now - next_at > GIVE_UP_CATCHING_UP:
            next_at = now
    return Paced(sent, errors, clock() - start)


def server_main(argv: list[str], usage: str, names: tuple[str, ...],
                start: Callable[..., dict[str, Any]], reactor: Any = None) -> int:
    """Run a tool server: ``argv`` is ADDRESS PORT and then ``names``.

    ``start(reactor, address, port, *rest)`` opens the server's ports and
    returns what the "listening" line should say besides the address; then
    the reactor runs until SIGTERM (the agent's STOP), which Twisted turns
    into a clean stop.  Wrong arguments print ``usage`` and return 2.
    """
    if len(argv) != 2 + len(names) or not argv[1].isdigit():
        print(usage, file=sys.stderr)
        return 2
    address, port, *rest = argv
    if reactor is None:
        # A tool server is a program of its own: the global reactor is its
        # own.  Tests pass a fake one.
        from twisted.internet import reactor
    said = start(reactor, address, int(port), *rest)
    print(json.dumps({"listening": f"{address}:{port}", **said}), flush=True)
    reactor.run()
    return 0
