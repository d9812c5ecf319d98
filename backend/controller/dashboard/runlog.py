"""The `seer run` scripts for the event log: which run, and what they print, bounded.

A listener of the controller's script runner (``scripts.listeners``): it
hears each run start, print and end.  Output is held until the next tick
and sent then as one ``output`` event per run -- a script printing in a
tight loop costs the page one event a second, not one per write -- and
at most ``per_tick`` characters of it (the rest is said to be left out;
the whole output is in the run's folder, ``output.log``).  A page that
connects later gets each running script's last ``kept`` characters.
Finished runs are remembered (the last ``runs_kept``) without their output.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunEntry:
    run: str
    experimenter: str
    started: float
    ended: float | None = None
    code: int | None = None
    signal: int | None = None
    #: What it printed, its last ``kept`` characters.
    tail: str = ""
    #: Printed since the last tick: [stream, text] pieces.
    pending: list[list[str]] = field(default_factory=list)
    pending_chars: int = 0
    left_out: int = 0

    def summary(self) -> dict[str, Any]:
        return {"run": self.run, "experimenter": self.experimenter, "started": self.started,
                "ended": self.ended, "code": self.code, "signal": self.signal}


class RunLog:
    def __init__(self, clock: Any, per_tick: int = 65536, kept: int = 16384,
                 runs_kept: int = 20) -> None:
        self.clock = clock
        self.per_tick = per_tick
        self.kept = kept
        self.runs_kept = runs_kept
        self.runs: OrderedDict[str, RunEntry] = OrderedDict()
        #: (event name, data) to publish at the next tick: runs started or ended.
        self.events: list[tuple[str, dict[str, Any]]] = []

    # -- the script runner's listener -------------------------------------------------

    def run_started(self, run: Any) -> None:
        entry = RunEntry(run.id, run.experimenter, round(run.started_at, 3))
        self.runs[run.id] = entry
        while len(self.runs) > self.runs_kept:
            self.runs.popitem(last=False)
        self.events.append(("run", dict(entry.summary(), event="started")))

    def run_output(self, run: Any, stream: str, text: str) -> None:
        entry = self.runs.get(run.id)
        if entry is None:
            return
        entry.tail = (entry.tail + text)[-self.kept:]
        room = self.per_tick - entry.pending_chars
        if room <= 0:
            entry.left_out += len(text)
            return
        piece = text[:room]
        entry.left_out += len(text) - len(piece)
        entry.pending_chars += len(piece)
        if entry.pending and entry.pending[-1][0] == stream:
            entry.pending[-1][1] += piece
        else:
            entry.pending.append([stream, piece])

    def run_ended(self, run: Any) -> None:
        entry = self.runs.get(run.id)
        if entry is None:
            return
        entry.ended = round(self.clock.seconds(), 3)
        entry.code, entry.signal = getattr(run, "code", None), getattr(run, "signal", None)
        self.events.append(("run", dict(entry.summary(), event="ended")))

    # -- the page ------------------------------------------------------------------------

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """What to publish this tick: output (in order) first, then starts and ends."""
        out: list[tuple[str, dict[str, Any]]] = []
        for entry in self.runs.values():
            if entry.pending or entry.left_out:
                out.append(("output", {"run": entry.run, "pieces": entry.pending,
                                       "left_out": entry.left_out}))
                entry.pending, entry.pending_chars, entry.left_out = [], 0, 0
        events, self.events = self.events, []
        # A run that started and printed in one tick: its start comes first.
        starts = [e for e in events if e[1].get("event") == "started"]
        return starts + out + [e for e in events if e[1].get("event") != "started"]

    def hello(self) -> list[dict[str, Any]]:
        """Every run remembered, with the running ones' output so far."""
        return [dict(e.summary(), tail=e.tail if e.ended is None else "")
                for e in self.runs.values()]
