"""Job history: every message a client sent, who sent it, and each node's outcome.

A job is one COMMAND, SET, PUT or GET, known by its serial (the job id the
CLI prints and the Python API returns).  The store keeps the latest
JOBS_KEPT jobs with each targeted node's outcome -- including outcomes that
arrive after the client stopped waiting (a node that was slow, or came
back): they replace its ``unconfirmed``.  It is Salt's ``jobs.lookup_jid``,
and says who sent the job too.

Jobs survive a restart: each finished job, and each later change to it, is
appended to ``jobs.jsonl`` in the controller's state folder (in a thread, at
most once a second), and the file is rewritten
with only the kept jobs when it has grown to several times that.  Only the
outcomes that are not plain ``applied`` are stored per node -- the applied
ones are the rest of the job's nodes -- so a job to a thousand nodes that
all applied it stays small.
"""

from __future__ import annotations

import json
import os
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from backend.controller.outcomes import outcome_entry
from seer.protocol.wire import dumps

log = Logger()

#: Jobs kept (in memory and on disk).
JOBS_KEPT = 1000
#: The jobs file is rewritten when it has this many times JOBS_KEPT lines.
REWRITE_AT = 3
#: Seconds finished jobs and late outcomes are gathered before they are written
#: (a controller killed meanwhile forgets at most that much of the history).
WRITE_DELAY = 1.0
FILE = "jobs.jsonl"


class Jobs:
    def __init__(self, state_dir: str | Path, clock: Any,
                 blocking: Callable[..., Deferred], keep: int = JOBS_KEPT) -> None:
        self.path = Path(state_dir) / FILE
        self.clock = clock
        self.blocking = blocking
        self.keep = keep
        self._jobs: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lines = 0
        self._dirty: set[int] = set()
        self._write_call: Any = None
        self._writing: Deferred = succeed(None)

    # -- what happens to a job ----------------------------------------------------------

    def started(self, serial: int, message: dict[str, Any], nodes: list[str],
                sent_at: float) -> None:
        """A message was sent to ``nodes``; its outcomes are due."""
        self._jobs[serial] = {
            "job": serial, "time": round(sent_at, 3), "sender": message.get("origin", ""),
            "type": message.get("type", ""), "agent": message.get("agent", ""),
            "group": message.get("group", ""),
            "command": message.get("command") or message.get("name") or "",
            "target": message.get("target"), "nodes": list(nodes), "done": None,
            "outcomes": {},  # node -> outcome, for those not plain "applied"
            "pending": sorted(nodes),
        }
        while len(self._jobs) > self.keep:
            self._jobs.popitem(last=False)

    def finished(self, serial: int, outcomes: dict[str, dict[str, Any]]) -> None:
        """Every outcome is in, or the client's deadline passed."""
        job = self._jobs.get(serial)
        if job is None:
            return
        job["done"] = round(self.clock.seconds(), 3)
        job["pending"] = []
        job["outcomes"] = {n: o for n, o in outcomes.items() if o != {"status": "applied"}}
        missing = [n for n in job["nodes"] if n not in outcomes]
        for node in missing:  # no outcome at all: as the client saw it
            job["outcomes"][node] = {"status": "unconfirmed", "error": "no outcome"}
        self._changed(serial)

    def late(self, node: str, serial: int, status: str, error: str | None, result: Any,
             at: float | None) -> bool:
        """An outcome that came after the job was finished: it replaces the
        node's ``unconfirmed``.  False if the job is unknown or not finished."""
        job = self._jobs.get(serial)
        if job is None or job["done"] is None or node not in job["nodes"]:
            return False
        before = job["outcomes"].get(node)
        if before is not None and before.get("status") != "unconfirmed":
            return False  # it had its outcome; a repeat changes nothing
        job["outcomes"][node] = dict(outcome_entry(status, error, result, at), late=True)
        self._changed(serial)
        return True

    # -- what clients see ---------------------------------------------------------------

    def summary(self, job: dict[str, Any]) -> dict[str, Any]:
        counts = Counter(o.get("status", "?") for o in job["outcomes"].values())
        applied = len(job["nodes"]) - len(job["outcomes"]) - len(job["pending"])
        if applied:
            counts["applied"] += applied
        if job["pending"]:
            counts["pending"] = len(job["pending"])
        return {k: job[k] for k in ("job", "time", "done", "sender", "type", "agent", "group",
                                    "command", "target")} | {"nodes": len(job["nodes"]),
                                                             "counts": dict(counts)}

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """Summaries of the latest ``limit`` jobs, newest first."""
        jobs = list(self._jobs.values())[-limit:] if limit else []
        return [self.summary(j) for j in reversed(jobs)]

    def get(self, serial: int) -> dict[str, Any] | None:
        """One job with every node's outcome (the applied ones filled in)."""
        job = self._jobs.get(serial)
        if job is None:
            return None
        outcomes = {n: job["outcomes"].get(n) or (
            {"status": "pending"} if n in job["pending"] else {"status": "applied"})
            for n in job["nodes"]}
        return dict(self.summary(job), nodes=job["nodes"], outcomes=outcomes)

    def known(self) -> tuple[int, int] | None:
        """The oldest and newest job ids kept."""
        if not self._jobs:
            return None
        return next(iter(self._jobs)), next(reversed(self._jobs))

    # -- on disk -------------------------------------------------------------------------

    def load(self) -> int:
        """The jobs of the last run (blocking: at start-up, before the reactor runs)."""
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return 0
        for line in lines:
            try:
                job = json.loads(line)
                self._jobs[int(job["job"])] = job
                self._jobs.move_to_end(int(job["job"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line (killed mid-write)
        for job in self._jobs.values():
            job["pending"] = []  # nobody waits for them any more
        while len(self._jobs) > self.keep:
            self._jobs.popitem(last=False)
        self._lines = len(lines)
        return len(self._jobs)

    def _changed(self, serial: int) -> None:
        # Written at most once a WRITE_DELAY, in one go: a write per job (a
        # thread hop each) cost more than the rest of a command's handling.
        self._dirty.add(serial)
        if self._write_call is None or not self._write_call.active():
            self._write_call = self.clock.callLater(WRITE_DELAY, self._write)

    def _write(self) -> None:
        if self._write_call is not None and self._write_call.active():
            self._write_call.cancel()
        self._write_call = None
        dirty, self._dirty = self._dirty, set()
        records = [dumps(self._jobs[s]) for s in sorted(dirty) if s in self._jobs]
        if not records:
            return
        self._lines += len(records)
        rewrite = self._lines > REWRITE_AT * self.keep
        if rewrite:
            records = [dumps(j) for j in self._jobs.values()]
            self._lines = len(records)
        # One write at a time, in order: an append must not race a rewrite.
        self._writing = self._writing.addBoth(
            lambda _: self.blocking(_write_lines, self.path, records, rewrite)).addErrback(
            lambda f: log.failure("writing the job history to {path}", f, path=str(self.path)))

    def stop(self) -> None:
        """Controller shutdown: write what is waiting."""
        if self._dirty:
            self._write()


def _write_lines(path: Path, records: list[bytes], rewrite: bool) -> None:
    data = b"".join(r + b"\n" for r in records)
    if rewrite:
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    else:
        with open(path, "ab") as f:
            f.write(data)
