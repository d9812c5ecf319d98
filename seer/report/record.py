"""Reading one recorded run: its samples, its command log and its phases.

A run is any of
  * a `seer run` results folder (``stats.csv``, ``commands.csv``, and
    ``phases.csv`` if the script marked phases),
  * a run's folder on the controller (those files in its ``results/``),
  * a file `seer stats record FILE` wrote (``FILE``, ``<stem>-commands.csv``
    beside it, and ``<stem>-phases.csv`` or ``phases.csv`` beside it).
The formats are docs/STATS.md's run records and seer/client/phases.py's
table.  Times become seconds since the run started, the clock every plot
shares.  Standard library only: what to draw is decided here, and only
seer/report/plots.py loads matplotlib.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from seer.client.phases import PHASE_COLUMNS, PHASES_FILE
from seer.client.stats import commands_path
from seer.protocol.stats import COMMAND_COLUMNS, SAMPLE_COLUMNS

SAMPLES_FILE = "stats.csv"
COMMANDS_FILE = "commands.csv"
#: A link whose rate never reached this (bit/s) carried no traffic of the
#: experiment's: ARP and the like.  It gets no plot; the page lists it.
IDLE_BPS = 1000.0
#: At most this many counters on a group's plot (the page has them all):
#: an HTTP group's six (served requests and bytes; its clients' requests,
#: bytes, seconds, errors) fit, the process bookkeeping after them does not.
MAX_COUNTERS = 6
#: Counters of a traffic generator's client processes that count processes,
#: not traffic: drawn only when a group has nothing else.
BOOKKEEPING = ("launched", "running", "exited_ok", "exited_error", "killed")


class RecordError(Exception):
    """No run record where the user pointed, or not one SEER wrote; the
    message says which and what to give instead."""


@dataclass
class Series:
    """One number over the run: seconds since its start, and the values."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def peak(self) -> float:
        return max(self.values, default=0.0)

    def changed(self) -> bool:
        return bool(self.values) and max(self.values) != min(self.values)


@dataclass
class Command:
    """A finished command of the run's command log (commands.csv)."""

    elapsed: float
    serial: str
    type: str
    agent: str
    group: str
    command: str
    target: str
    nodes: int
    applied: int
    failed: int
    skipped: int
    unconfirmed: int
    first_error: str

    @property
    def what(self) -> str:
        """How a person would name it: ``START HTTP background``, ``GET x.pcap``."""
        if self.type == "COMMAND":
            return " ".join(p for p in (self.command, self.agent, self.group) if p)
        return " ".join(p for p in (self.type, self.agent, self.group) if p)


@dataclass
class Phase:
    """A phase the script marked, in seconds since the run started."""

    name: str
    start: float
    end: float
    #: It had not ended when the record stops (the script died): it ends
    #: with the record here.
    open: bool = False


@dataclass
class RunRecord:
    """One run, read: every series by (kind, name, field), commands, phases."""

    label: str
    samples_file: Path
    commands_file: Path | None
    phases_file: Path | None
    started: float
    series: dict[tuple[str, str, str], Series]
    commands: list[Command]
    phases: list[Phase]

    @property
    def duration(self) -> float:
        ends = [s.times[-1] for s in self.series.values() if s.times]
        ends += [c.elapsed for c in self.commands] + [p.end for p in self.phases]
        return max(ends, default=0.0)

    @property
    def intervals(self) -> int:
        return len({t for s in self.series.values() for t in s.times})

    def get(self, kind: str, name: str, field_name: str) -> Series | None:
        return self.series.get((kind, name, field_name))

    def names(self, kind: str) -> list[str]:
        return sorted({n for k, n, _ in self.series if k == kind})

    def links(self) -> list[str]:
        return self.names("links")

    def carried_links(self) -> list[str]:
        """Links whose rate passed IDLE_BPS in some interval: those get a plot."""
        return [n for n in self.links()
                if (s := self.get("links", n, "bps")) is not None and s.peak() > IDLE_BPS]

    def counters(self, group: str) -> list[str]:
        """The group's counters (``counters.NAME`` fields), by NAME."""
        return sorted(f.removeprefix("counters.") for k, n, f in self.series
                      if k == "groups" and n == group and f.startswith("counters."))

    def main_counters(self, group: str) -> list[str]:
        """The counters a group's plot shows: those that counted something,
        the agent's own first, then its clients', process bookkeeping last;
        at most MAX_COUNTERS."""
        counted = [c for c in self.counters(group)
                   if (s := self.get("groups", group, f"counters.{c}")) is not None
                   and s.peak() > 0]

        def order(name: str) -> tuple[int, str]:
            leaf = name.rpartition(".")[2]
            return (2 if leaf in BOOKKEEPING else 1 if "." in name else 0), name

        ranked = sorted(counted, key=order)
        useful = [c for c in ranked if c.rpartition(".")[2] not in BOOKKEEPING]
        return (useful or ranked)[:MAX_COUNTERS]

    def counting_groups(self) -> list[str]:
        """Groups that counted something: those get a plot."""
        return [g for g in self.names("groups") if self.main_counters(g)]

    def final(self, kind: str, name: str, field_name: str) -> float | None:
        s = self.get(kind, name, field_name)
        return s.values[-1] if s is not None and s.values else None

    def outcome_totals(self) -> dict[str, int]:
        """Commands and their nodes' outcomes, summed over the command log."""
        totals = {"commands": len(self.commands), "applied": 0, "failed": 0, "skipped": 0,
                  "unconfirmed": 0}
        for c in self.commands:
            for key in ("applied", "failed", "skipped", "unconfirmed"):
                totals[key] += getattr(c, key)
        return totals


def locate(path: str | Path) -> tuple[Path, Path | None, Path | None]:
    """(samples, command log, phases) of the run at ``path``; the last two
    None where the run has none.  RecordError when there is no run there."""
    path = Path(path)
    if path.is_dir():
        folder = path
        if not (folder / SAMPLES_FILE).is_file() and (folder / "results" / SAMPLES_FILE).is_file():
            folder = folder / "results"  # a run's folder on the controller
        samples = folder / SAMPLES_FILE
        if not samples.is_file():
            raise RecordError(
                f"no run record in {path}: it has no {SAMPLES_FILE}. Give the results folder "
                "of a `seer run` (its --results, ./results by default) or a file "
                "`seer stats record FILE` wrote")
        commands, phases = folder / COMMANDS_FILE, folder / PHASES_FILE
    elif path.is_file():
        samples = path
        commands = commands_path(path)
        phases = path.with_name(f"{path.stem}-phases.csv")
        if not phases.is_file():
            phases = path.with_name(PHASES_FILE)
    else:
        raise RecordError(
            f"no run record at {path}: there is no such file or folder. Give the results "
            "folder of a `seer run` (its --results, ./results by default) or a file "
            "`seer stats record FILE` wrote")
    return (samples, commands if commands.is_file() else None,
            phases if phases.is_file() else None)


def _rows(path: Path, columns: tuple[str, ...], what: str) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = tuple(reader.fieldnames or ())
            if not set(columns) <= set(header):
                raise RecordError(
                    f"{path} is not {what}: its columns are {', '.join(header) or 'none'}, "
                    f"and SEER's are {', '.join(columns)}")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RecordError(f"cannot read {path}: {e}") from None


def _number(text: str | None, default: float = math.nan) -> float:
    try:
        return float(text) if text not in (None, "") else default
    except ValueError:
        return default


def _count(text: str | None) -> int:
    value = _number(text, 0.0)
    return int(value) if math.isfinite(value) else 0


def load(path: str | Path, label: str | None = None) -> RunRecord:
    """The run at ``path`` (see the module's docstring), read whole."""
    samples_file, commands_file, phases_file = locate(path)
    sample_rows = _rows(samples_file, SAMPLE_COLUMNS, "a run record's samples (stats.csv)")
    command_rows = _rows(commands_file, COMMAND_COLUMNS, "a run record's command log") \
        if commands_file else []
    phase_rows = _rows(phases_file, PHASE_COLUMNS, "a run's phase table") if phases_file else []

    # The run's start: each sample says when it was taken and how long after
    # the start that was; a record without samples falls back on the phases'.
    starts = [_number(r["time"]) - _number(r["elapsed"]) for r in sample_rows[:50]]
    starts += [_number(r["start"]) - _number(r["start_elapsed"]) for r in phase_rows]
    starts = [s for s in starts if math.isfinite(s)]
    started = min(starts) if starts else min(
        (_number(r["time"]) for r in command_rows), default=0.0)

    series: dict[tuple[str, str, str], Series] = {}
    for r in sample_rows:
        t, value = _number(r["time"]) - started, _number(r["value"])
        if not (math.isfinite(t) and math.isfinite(value)):
            continue
        s = series.setdefault((r["kind"], r["name"], r["field"]), Series())
        s.times.append(t)
        s.values.append(value)
    for s in series.values():  # rows come in interval order; a merged file may not
        if any(b < a for a, b in zip(s.times, s.times[1:], strict=False)):
            pairs = sorted(zip(s.times, s.values, strict=True))
            s.times, s.values = [t for t, _ in pairs], [v for _, v in pairs]

    commands = [Command(
        elapsed=round(_number(r["time"], started) - started, 3), serial=r["serial"],
        type=r["type"], agent=r["agent"], group=r["group"], command=r["command"],
        target=r["target"], nodes=_count(r["nodes"]), applied=_count(r["applied"]),
        failed=_count(r["failed"]), skipped=_count(r["skipped"]),
        unconfirmed=_count(r["unconfirmed"]), first_error=r.get("first_error") or "")
        for r in command_rows]
    commands.sort(key=lambda c: c.elapsed)  # the log is in finishing order

    record = RunRecord(label or _label(Path(path)), samples_file, commands_file, phases_file,
                       started, series, commands, [])
    end_of_record = record.duration
    for r in phase_rows:
        start = _number(r["start"]) - started
        end = _number(r["end"]) - started
        if not math.isfinite(start):
            continue
        still_open = not math.isfinite(end)
        record.phases.append(Phase(r["phase"], round(start, 3),
                                   round(max(end_of_record, start) if still_open else end, 3),
                                   still_open))
    record.phases.sort(key=lambda p: p.start)
    return record


def _label(path: Path) -> str:
    """A run's name for titles and legends: its folder (the run's, not
    ``results``), or the record file's stem."""
    resolved = path.resolve()
    if resolved.is_file():
        return resolved.stem
    if resolved.name == "results" and resolved.parent.name:
        return resolved.parent.name
    return resolved.name or str(path)
