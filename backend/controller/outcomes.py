"""Collect each targeted node's outcome for a message (controller side).

For every message it sends, the controller expects one outcome per targeted
node: ``applied``, ``failed`` (with the agent's error) or ``skipped``.  When
all are in -- or at the deadline, when the missing ones become
``unconfirmed`` with the reason (node down, never registered, or simply no
answer in time) -- the client gets the whole set at once.

A node brought up to date by a snapshot cannot report messages one by one;
:meth:`caught_up` settles its pending outcomes: state messages count as
applied through the snapshot, events as skipped, and both say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

Outcomes = dict[str, dict[str, Any]]


def outcome_entry(status: str, error: str | None = None, result: Any = None,
                  at: float | None = None) -> dict[str, Any]:
    """One node's outcome as RESULT and the job history carry it: the
    status, and error, result and ``at`` only where there is one."""
    entry: dict[str, Any] = {"status": status}
    if error:
        entry["error"] = error
    if result is not None:
        entry["result"] = result
    if at is not None:
        entry["at"] = at
    return entry


@dataclass
class _Pending:
    serial: int
    waiting: set[str]
    is_state: bool
    due: float | None
    on_complete: Callable[[int, Outcomes], None]
    outcomes: Outcomes = field(default_factory=dict)
    timer: IDelayedCall | None = None


class OutcomeTracker:
    def __init__(
        self,
        clock: IReactorTime,
        why_unconfirmed: Callable[[str], str] = lambda node: "no outcome in time",
    ) -> None:
        self._clock = clock
        self._why_unconfirmed = why_unconfirmed
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def expect(
        self,
        serial: int,
        nodes: list[str],
        timeout: float,
        on_complete: Callable[[int, Outcomes], None],
        is_state: bool = False,
        due: float | None = None,
    ) -> None:
        """Wait up to ``timeout`` s for each node's outcome of ``serial``.

        ``due`` is the message's scheduled time, if any.
        """
        pending = _Pending(serial, set(nodes), is_state, due, on_complete)
        self._pending[serial] = pending
        if not pending.waiting:
            self._complete(pending)
            return
        pending.timer = self._clock.callLater(timeout, self._expire, serial)

    def record(
        self,
        node: str,
        serial: int,
        status: str,
        error: str | None = None,
        result: Any = None,
        at: float | None = None,
    ) -> bool:
        """One node's outcome; returns False if nobody was waiting for it.

        ``at`` is when the node started on the message, by its clock."""
        pending = self._pending.get(serial)
        if pending is None or node not in pending.waiting:
            return False
        pending.waiting.discard(node)
        pending.outcomes[node] = outcome_entry(status, error, result, at)
        if not pending.waiting:
            self._complete(pending)
        return True

    def caught_up(self, node: str, upto: int) -> None:
        """``node`` applied a snapshot that covers every serial up to ``upto``.

        State messages scheduled for later are left alone: the snapshot
        handed them to the node's scheduler, which reports them when they
        run.  Events are not in snapshots, so any the node missed -- even
        ones due later -- are skipped, and said so.
        """
        now = self._clock.seconds()
        for serial in sorted(s for s in self._pending if s <= upto):
            pending = self._pending[serial]
            later = pending.due is not None and pending.due > now
            if node in pending.waiting and not (later and pending.is_state):
                if pending.is_state:
                    self.record(node, serial, "applied", None, {"via": "snapshot"})
                else:
                    self.record(
                        node, serial, "skipped",
                        "missed while the node was behind; events are not replayed",
                    )

    def cancel_all(self) -> None:
        for pending in self._pending.values():
            if pending.timer is not None and pending.timer.active():
                pending.timer.cancel()
        self._pending.clear()

    def _expire(self, serial: int) -> None:
        pending = self._pending.get(serial)
        if pending is None:
            return
        pending.timer = None
        for node in sorted(pending.waiting):
            pending.outcomes[node] = {
                "status": "unconfirmed",
                "error": self._why_unconfirmed(node),
            }
        pending.waiting.clear()
        self._complete(pending)

    def _complete(self, pending: _Pending) -> None:
        self._pending.pop(pending.serial, None)
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        pending.on_complete(pending.serial, dict(sorted(pending.outcomes.items())))
