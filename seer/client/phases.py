"""An experiment's phases: the named intervals a script marks, kept in its run record.

``exp.mark("during")`` begins the phase ``during`` and ends the one before
it; ``exp.end_phase()`` ends the current one; the phase open when the
experiment closes ends then.  Phases follow one another: one at a time, in
the order of their starts.  The table is ``results/phases.csv`` (under
`seer run`, next to the controller's stats.csv and commands.csv, so it
comes home with them), one row a phase, PHASE_COLUMNS:

    phase, start, end, start_elapsed, end_elapsed

``start`` and ``end`` are Unix times (seconds, to the millisecond),
``*_elapsed`` the same as seconds since the experiment started (what
stats.csv's ``elapsed`` counts); ``end`` is empty while the phase is open.
The file is rewritten whole at every mark -- a few rows, replaced in one
rename -- so a script that dies still leaves the phases it marked.
`seer report` reads it (seer/report/record.py) and shades the phases on
every plot.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

#: The table's name in a run's results/ (and its columns).
PHASES_FILE = "phases.csv"
PHASE_COLUMNS = ("phase", "start", "end", "start_elapsed", "end_elapsed")


@dataclass
class Phase:
    """One named interval of the experiment: Unix times; ``end`` None while open."""

    name: str
    start: float
    end: float | None = None


class PhaseLog:
    """The phases marked so far, written to ``path`` (None: kept in memory only)."""

    def __init__(self, path: str | Path | None, started_at: float) -> None:
        self.path = None if path is None else Path(path)
        self.started_at = started_at
        self.phases: list[Phase] = []

    @property
    def current(self) -> Phase | None:
        """The open phase, if any."""
        return self.phases[-1] if self.phases and self.phases[-1].end is None else None

    def mark(self, name: str, at: float) -> Phase:
        """Begin phase ``name`` at ``at``, ending the open one there."""
        if not isinstance(name, str) or not name.strip() or "\n" in name:
            raise ValueError(f"a phase needs a name on one line, e.g. exp.mark('during'); "
                             f"got {name!r}")
        if self.phases:
            last = self.phases[-1]
            if at < last.start:
                raise ValueError(f"phase {name!r} would begin {last.start - at:.3f} s before "
                                 f"phase {last.name!r}, marked earlier: phases follow one "
                                 "another, mark them in the order they begin")
            if last.end is not None and last.end > at:
                raise ValueError(f"phase {name!r} would begin before phase {last.name!r} "
                                 "ends: end that one earlier (exp.end_phase(at=...)) or "
                                 "begin this one later")
            if last.end is None:
                last.end = at
        phase = Phase(name.strip(), at)
        self.phases.append(phase)
        self.write()
        return phase

    def end(self, at: float) -> Phase | None:
        """End the open phase at ``at``; None if no phase is open."""
        phase = self.current
        if phase is None:
            return None
        if at < phase.start:
            raise ValueError(f"phase {phase.name!r} cannot end {phase.start - at:.3f} s "
                             "before it begins")
        phase.end = at
        self.write()
        return phase

    def close(self, now: float) -> None:
        """The experiment is over: the open phase ends now, and a phase
        marked for a time the experiment never reached is dropped."""
        kept = [p for p in self.phases if p.start <= now]
        changed = len(kept) != len(self.phases)
        self.phases = kept
        for phase in kept:
            if phase.end is None or phase.end > now:
                phase.end = now
                changed = True
        if changed:
            self.write()

    def write(self) -> None:
        """Replace the table with the phases as they are now."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        with open(partial, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(PHASE_COLUMNS)
            for p in self.phases:
                end = "" if p.end is None else round(p.end, 3)
                end_elapsed = "" if p.end is None else round(p.end - self.started_at, 3)
                out.writerow((p.name, round(p.start, 3), end,
                              round(p.start - self.started_at, 3), end_elapsed))
        os.replace(partial, self.path)  # a reader never sees half a table
