"""REPORT frames: what a node tells the controller, batched per reactor turn.

Outcomes, agent events, the runs that ended by themselves, the end of a
snapshot and the cumulative acknowledgement wait for the end of the turn and leave in one REPORT; an
acknowledgement with nothing else to carry waits ACK_DELAY so a burst of
datagrams costs one frame.  While the controller is unreachable they are
kept (up to BACKLOG_LIMIT each, oldest dropped and counted) and sent after
the next WELCOME.  The daemon's counters ride along, throttled (see
:meth:`Reporter._add_stats`).

A report of nothing but the acknowledgement and outcomes goes by UDP when
the controller gave this node a report channel (backend/node/reportchannel.py)
and it fits one datagram: much cheaper than a TLS frame on both ends.  The
outcomes it carried are kept until a REPORTED frame confirms the datagram;
those still unconfirmed after RESEND_AFTER go again over TLS, so a lost
datagram makes an outcome late, never lost.  A channel whose datagrams are
never confirmed (UDP blocked on the way) is given up for TLS.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

#: An acknowledgement with no outcome to carry waits this long to batch.
ACK_DELAY = 0.2
#: The daemon's counters ride along with a REPORT at most this often ...
STATS_INTERVAL = 5.0
#: ... and, if only the traffic counters moved, this often.
STATS_REFRESH = 60.0
ROUTINE_COUNTERS = frozenset({"datagrams", "delivered", "dispatched"})
#: Outcomes and events kept while the controller is unreachable.
BACKLOG_LIMIT = 100_000
#: Seconds a report datagram's outcomes wait for their REPORTED before TLS takes them.
RESEND_AFTER = 1.5
#: Resends in a row, with no confirmation at all between them, that make the
#: node give up its report channel for TLS.
GIVE_UP_AFTER = 3
#: What a report datagram may carry; anything else makes it a TLS REPORT.
DATAGRAM_FIELDS = frozenset({"type", "ack", "outcomes"})


class Reporter:
    def __init__(self, clock: Any, link: Any, ack: Callable[[], int],
                 counters: Callable[[], dict[str, int]], tally: Counter[str]) -> None:
        self.clock = clock
        #: Has ``session`` (None while disconnected) and ``send(header)``.
        self._link = link
        self._ack = ack
        self._counters = counters
        #: The daemon's counters, where this counts what it does: outcomes and
        #: events dropped from a full backlog, report datagrams sent and sent again.
        self._tally = tally
        self._outcomes: list[list[Any]] = []
        self._events: list[dict[str, Any]] = []
        self._runs: list[dict[str, Any]] = []
        self._snapshot_done: int | None = None
        #: The acknowledgement the controller last heard.
        self.reported_ack = -1
        self._stats_sent_at = float("-inf")
        self._stats_last: dict[str, int] = {}
        self._stats_call: Any = None
        self._call: Any = None
        self._holding = False
        self._due = False
        self._ack_due = False
        #: The controller's report channel (None: TLS only).
        self.channel: Any = None
        #: seq -> (sent at, outcomes) of report datagrams not yet confirmed.
        self._unconfirmed: dict[int, tuple[float, list[list[Any]]]] = {}
        self._resend_call: Any = None
        self._unanswered_resends = 0
        #: Serials whose outcomes go by TLS, behind frames sent before them.
        self._ordered: set[int] = set()

    def outcome(self, serial: int, status: str, error: str | None, result: Any,
                at: float) -> None:
        self._backlog(self._outcomes, [serial, status, error, result, round(at, 6)], "outcomes")
        self.schedule(urgent=True)

    def event(self, agent_type: str, group: str, event: str, data: dict[str, Any]) -> None:
        self._backlog(self._events, {"agent": agent_type, "group": group, "event": event,
                                     "data": data, "time": self.clock.seconds()}, "events")
        self.schedule(urgent=True)

    def run_ended(self, agent_type: str, group: str, start: int, why: str) -> None:
        """A group's run (begun by the START of serial ``start``) ended by itself."""
        self._backlog(self._runs, {"agent": agent_type, "group": group, "start": start,
                                   "at": round(self.clock.seconds(), 6), "why": why}, "runs")
        self.schedule(urgent=True)

    def snapshot_applied(self, serial: int) -> None:
        self._snapshot_done = serial
        self.schedule(urgent=True)

    def _backlog(self, queue: list[Any], item: Any, what: str) -> None:
        if len(queue) >= BACKLOG_LIMIT:
            del queue[0]
            self._tally[f"{what}_dropped"] += 1
        queue.append(item)

    def schedule(self, urgent: bool) -> None:
        """A REPORT at the end of this turn (urgent) or within ACK_DELAY."""
        if self._holding:  # decided when the datagram being handled is done
            if urgent:
                self._due = True
            else:
                self._ack_due = True
            return
        call = self._call
        if call is not None and call.active():
            if urgent and call.getTime() > self.clock.seconds():
                call.reset(0)
            return
        self._call = self.clock.callLater(0 if urgent else ACK_DELAY, self.flush)

    def hold(self) -> None:
        """A datagram is being handled: its outcomes, acknowledgement and
        events leave in one REPORT written as soon as it is done (:meth:`release`)
        -- in the same reactor turn, not one turn later, and with no timer
        set and cancelled for an acknowledgement its outcome carries anyway."""
        self._holding = True

    def release(self) -> None:
        self._holding = False
        if self._due:
            self._due = self._ack_due = False
            self.flush()
        elif self._ack_due:
            self._ack_due = False
            self.schedule(urgent=False)

    def flush(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._link.session is None:
            return  # kept; sent after the next WELCOME
        header: dict[str, Any] = {"type": "REPORT", "ack": self._ack()}
        if self._outcomes:
            header["outcomes"], self._outcomes = self._outcomes, []
        if self._events:
            header["events"], self._events = self._events, []
        if self._runs:
            header["runs"], self._runs = self._runs, []
        if self._snapshot_done is not None:
            header["snapshot"], self._snapshot_done = self._snapshot_done, None
        self._add_stats(header)
        if not (header.keys() <= DATAGRAM_FIELDS and self._by_datagram(header)):
            self._link.send(header)
        self.reported_ack = header["ack"]

    # -- report datagrams ---------------------------------------------------------------

    def use_channel(self, channel: Any) -> None:
        """A new WELCOME: its report channel (or None).  Outcomes of the old
        session's datagrams not confirmed yet go again, by the new way."""
        self.channel = channel
        self._unanswered_resends = 0
        self._requeue(list(self._unconfirmed))

    def keep_order(self, serial: int) -> None:
        """``serial``'s outcome must follow the TLS frames sent before it (a
        GET's files): it goes by TLS."""
        self._ordered.add(serial)

    def _by_datagram(self, header: dict[str, Any]) -> bool:
        """Send ``header`` as a report datagram; False if it must go by TLS."""
        if self.channel is None:
            return False
        if self._ordered and any(o[0] in self._ordered for o in header.get("outcomes", ())):
            self._ordered.difference_update(o[0] for o in header["outcomes"])
            return False
        body = {"ack": header["ack"]}
        if "outcomes" in header:
            body["outcomes"] = header["outcomes"]
        seq = self.channel.send(body)
        if seq is None:
            return False
        self._tally["report_datagrams"] += 1
        if "outcomes" in header:
            self._unconfirmed[seq] = (self.clock.seconds(), header["outcomes"])
            if self._resend_call is None or not self._resend_call.active():
                self._resend_call = self.clock.callLater(RESEND_AFTER, self._resend)
        return True

    def confirmed(self, seqs: Any) -> None:
        """A REPORTED frame: the controller has these datagrams."""
        if not isinstance(seqs, list):
            return
        for seq in seqs:
            if self._unconfirmed.pop(seq, None) is not None:
                self._unanswered_resends = 0

    def _resend(self) -> None:
        """Outcomes of datagrams unconfirmed for RESEND_AFTER: again, by TLS."""
        self._resend_call = None
        now = self.clock.seconds()
        late = [seq for seq, (sent, _) in self._unconfirmed.items() if now - sent >= RESEND_AFTER]
        if late:
            self._tally["report_datagrams_resent"] += len(late)
            self._unanswered_resends += 1
            if self._unanswered_resends >= GIVE_UP_AFTER and self.channel is not None:
                self.channel = None
                self._tally["report_channel_given_up"] += 1
            self._requeue(late, by_tls=True)
        if self._unconfirmed:
            self._resend_call = self.clock.callLater(RESEND_AFTER, self._resend)

    def _requeue(self, seqs: list[int], by_tls: bool = False) -> None:
        outcomes = [o for seq in sorted(seqs) for o in self._unconfirmed.pop(seq)[1]]
        if not outcomes:
            return
        self._outcomes = outcomes + self._outcomes
        if by_tls and self._link.session is not None:
            channel, self.channel = self.channel, None
            try:
                self.flush()
            finally:
                self.channel = channel
        else:
            self.schedule(urgent=True)

    def _add_stats(self, header: dict[str, Any]) -> None:
        """Counters ride along at most once per STATS_INTERVAL when something
        worth telling changed (a drop, a repair ...), and at least once per
        STATS_REFRESH while traffic flows: a thousand nodes reporting every
        datagram count each second would load the controller for nothing."""
        now = self.clock.seconds()
        due = self._stats_sent_at + STATS_INTERVAL
        if now >= due:
            counters = self._counters()
            notable = {k: v for k, v in counters.items() if k not in ROUTINE_COUNTERS}
            last = {k: v for k, v in self._stats_last.items() if k not in ROUTINE_COUNTERS}
            stale = now - self._stats_sent_at >= STATS_REFRESH
            if notable != last or (stale and counters != self._stats_last):
                header["stats"] = self._stats_last = counters
                self._stats_sent_at = now
        elif self._stats_call is None or not self._stats_call.active():
            self._stats_call = self.clock.callLater(due - now, self._stats_due)

    def _stats_due(self) -> None:
        self._stats_call = None
        self.schedule(urgent=True)

    def stop(self) -> None:
        """Daemon shutdown: send what is queued, cancel the timers."""
        self.flush()
        for call in (self._call, self._stats_call, self._resend_call):
            if call is not None and call.active():
                call.cancel()
