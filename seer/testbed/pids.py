"""Processes the testbed started, named by PID *and* start time.

A PID alone is not a process: once a process is gone the kernel hands its
number to the next one (this machine's ``pid_max`` is 32768, so numbers
come round quickly).  So every process the testbed starts is recorded as a
:class:`Record` -- its PID and its start time (field 22 of
``/proc/PID/stat``, clock ticks since boot, read just after the spawn) --
and it is signalled only while ``/proc/PID/stat`` still shows that start
time.  Where the kernel offers pidfds the signal goes through one opened
*before* the check, so a process that dies between the check and the
signal cannot be replaced by another in that gap.

Nothing here looks at names or environments: a process belongs to the
testbed because the testbed wrote its record, or because it descends from
one that did (:func:`descendants`).  PIDs are the host's even for processes
inside a network namespace (only PID namespaces renumber, and the testbed
makes none).
"""

from __future__ import annotations

import ctypes
import os
import signal as signals
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

PROC = Path("/proc")
#: prctl option that makes a process the "child subreaper" of its descendants.
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Record:
    """One process the testbed started: what it is called, its PID, its start time."""

    name: str
    pid: int
    start: int | None  # None: not known, and then never signalled

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Record | None:
        """A record from testbed.json or processes.json; None if it is not one."""
        if not isinstance(data, dict):
            return None
        pid, start = data.get("pid"), data.get("start")
        if not isinstance(pid, int) or pid <= 0 or not (start is None or isinstance(start, int)):
            return None
        return cls(str(data.get("name", "")), pid, start)


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if there is none."""
    fields = _stat(pid)
    # fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_running(record: Record) -> bool:
    """The recorded process is still there: same PID, same start time, not a zombie."""
    if record.start is None:
        return False
    fields = _stat(record.pid)
    return bool(fields) and len(fields) > 19 and int(fields[19]) == record.start \
        and fields[0] != "Z"


def send_signal(record: Record, number: int) -> bool:
    """Signal the recorded process if it is still that process; whether it was sent."""
    opener = getattr(os, "pidfd_open", None)
    sender = getattr(signals, "pidfd_send_signal", None)
    fd = None
    if opener and sender:
        try:
            fd = opener(record.pid)
        except OSError:  # gone already, or a kernel without pidfds
            fd = None
    try:
        # Checked after the pidfd was opened: the fd then names the process checked.
        if not is_running(record):
            return False
        try:
            if fd is not None:
                sender(fd, number)
            else:
                os.kill(record.pid, number)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    finally:
        if fd is not None:
            os.close(fd)


def _parents() -> dict[int, int]:
    """PID -> parent PID of every process on the machine."""
    parents = {}
    for entry in os.listdir(PROC):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and len(fields) > 1:
                parents[int(entry)] = int(fields[1])
    return parents


def descendants(roots: Iterable[int]) -> list[Record]:
    """Every live descendant of the given PIDs (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found: list[Record] = []
    queue = list(roots)
    seen = set(queue)
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in seen:
                seen.add(child)
                queue.append(child)
                record = Record("descendant", child, start_time(child))
                if is_running(record):
                    found.append(record)
    return found


def stop(records: Iterable[Record], grace: float = 5.0, *,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """SIGTERM every recorded process still running, SIGKILL what is left
    after ``grace`` seconds; returns how many were running."""
    running = [r for r in records if is_running(r)]
    for record in running:
        send_signal(record, signals.SIGTERM)
    deadline = clock() + grace
    while clock() < deadline and any(is_running(r) for r in running):
        sleep(0.05)
    for record in running:
        send_signal(record, signals.SIGKILL)
    deadline = clock() + 2.0  # SIGKILL is not instant either
    while clock() < deadline and any(is_running(r) for r in running):
        sleep(0.02)
    return len(running)


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux >= 3.4).

    A daemon killed with SIGKILL leaves its agents' processes behind; as the
    supervisor's descendants they stay findable (and are stopped with it)
    instead of being handed to init.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_adopted(known: set[int]) -> list[int]:
    """Reap this process's zombie children that are not in ``known`` (the
    ones Twisted waits for itself): orphans it adopted as subreaper."""
    me = os.getpid()
    reaped = []
    for pid, parent in _parents().items():
        if parent != me or pid in known:
            continue
        fields = _stat(pid)
        if fields and fields[0] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
                reaped.append(pid)
            except ChildProcessError:
                pass
    return reaped
