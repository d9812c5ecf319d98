"""Run records: every `seer run` keeps its samples and its command log in its results/.

While a script runs, every interval's aggregate goes into
``results/stats.csv`` -- one row per number: time, elapsed (seconds since
the run started), kind (links, nodes, interfaces, groups), name, field,
value -- and every command that finishes into ``results/commands.csv``
(time, serial, sender, type, agent, group, command, target, nodes and the
outcome counts).  CSV because ``pandas.read_csv(path)`` and any spreadsheet
open it as it is, and a long table (one value a row) keeps the same columns
whatever the experiment's links and groups are.  The files are closed when
the script ends, before its results/ go back to the client, so `seer run`
brings them home with the rest.

The writes are buffered appends of a few KB a second, in the reactor thread
like the controller's own log; nothing is fsync'd (a record, not a journal).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from twisted.logger import Logger

from seer.protocol.stats import COMMAND_COLUMNS, SAMPLE_COLUMNS, command_row, rows

log = Logger()

SAMPLES_FILE = "stats.csv"
COMMANDS_FILE = "commands.csv"


class Record:
    """One run's two CSV files, open while it runs."""

    def __init__(self, folder: Path, started: float) -> None:
        self.folder = folder
        self.started = started
        folder.mkdir(parents=True, exist_ok=True)
        self._samples: TextIO = open(folder / SAMPLES_FILE, "w", newline="", buffering=1 << 16)
        self._commands: TextIO = open(folder / COMMANDS_FILE, "w", newline="",
                                      buffering=1 << 14)
        self.samples = csv.writer(self._samples)
        self.commands = csv.writer(self._commands)
        self.samples.writerow(SAMPLE_COLUMNS)
        self.commands.writerow(COMMAND_COLUMNS)
        self.rows = 0

    def close(self) -> None:
        for f in (self._samples, self._commands):
            try:
                f.close()
            except OSError as e:
                log.warn("run record {folder}: {error}", folder=str(self.folder), error=str(e))


class RunRecords:
    """A stats sink: the records of the runs under way."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}

    def run_started(self, run: Any) -> None:
        try:
            self.records[run.id] = Record(Path(run.folder) / "results", run.started_at)
        except OSError as e:
            log.warn("run {run}: cannot keep its record ({error})", run=run.id, error=str(e))

    def run_ended(self, run: Any) -> None:
        record = self.records.pop(run.id, None)
        if record is not None:
            record.close()

    def update(self, aggregate: dict[str, Any]) -> None:
        for record in self.records.values():
            for row in rows(aggregate, record.started):
                record.samples.writerow(row)
                record.rows += 1

    def command(self, entry: dict[str, Any]) -> None:
        for record in self.records.values():
            record.commands.writerow(command_row(entry))

    def close_all(self) -> None:
        for record in self.records.values():
            record.close()
        self.records.clear()
