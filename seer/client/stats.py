"""Recording the experiment's stats outside a run: `seer stats record FILE`.

The same two tables a `seer run` keeps in its results (the controller
writes those; seer.protocol.stats defines the rows of both): FILE holds
the samples -- time, elapsed, kind, name, field, value; one number a row,
CSV so that ``pandas.read_csv(FILE)`` and a spreadsheet open it as it is
-- and FILE's sibling ``<stem>-commands.csv`` the command log.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, TextIO

from seer.protocol.stats import COMMAND_COLUMNS, SAMPLE_COLUMNS, command_row, rows


def commands_path(path: Path) -> Path:
    """Where the command log of a record in ``path`` goes."""
    return path.with_name(f"{path.stem}-commands.csv")


class Recorder:
    """Appends aggregates and command-log entries to a record's two CSV files."""

    def __init__(self, path: str | Path, started: float | None = None) -> None:
        self.path = Path(path)
        self.started = time.time() if started is None else started
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._samples: TextIO = open(self.path, "w", newline="")
        self._commands: TextIO = open(commands_path(self.path), "w", newline="")
        self.samples = csv.writer(self._samples)
        self.commands = csv.writer(self._commands)
        self.samples.writerow(SAMPLE_COLUMNS)
        self.commands.writerow(COMMAND_COLUMNS)
        self.aggregates = 0
        self.entries = 0

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def take(self, frame: Any) -> None:
        """One frame of a stats subscription."""
        if frame.type == "AGGREGATE" and isinstance(frame.get("aggregate"), dict):
            self.samples.writerows(rows(frame.get("aggregate"), self.started))
            self.aggregates += 1
            self._samples.flush()
        elif frame.type == "COMMAND_LOG" and isinstance(frame.get("entry"), dict):
            self.commands.writerow(command_row(frame.get("entry")))
            self.entries += 1
            self._commands.flush()

    def close(self) -> None:
        self._samples.close()
        self._commands.close()


def record(experiment: Any, path: str | Path, duration: float | None = None) -> Recorder:
    """Subscribe and record until ``duration`` seconds have passed (or Ctrl-C)."""
    experiment.subscribe_stats()
    deadline = None if duration is None else time.monotonic() + duration
    with Recorder(path) as recorder:
        try:
            while deadline is None or time.monotonic() < deadline:
                wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
                for frame in experiment.events(timeout=wait):
                    recorder.take(frame)
        except KeyboardInterrupt:
            pass
    return recorder
