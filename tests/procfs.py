"""Looking in /proc for what a test left behind: orphans and zombies."""

from __future__ import annotations

import os
from pathlib import Path


def _stat(pid: str) -> tuple[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command may contain spaces; the fields after its ')' do not.
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def children(parent: int) -> list[tuple[int, str]]:
    """(pid, state) of every process whose parent is ``parent``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(entry)
            if stat and stat[1] == parent:
                out.append((int(entry), stat[0]))
    return out


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    stat = _stat(str(pid))
    return stat is not None and stat[0] != "Z"


def zombies(parent: int) -> list[int]:
    return [pid for pid, state in children(parent) if state == "Z"]


def tagged(tag_prefix: str) -> list[int]:
    """Live (non-zombie) processes carrying a SEER process tag prefix."""
    from backend.runtime.processes import tagged_processes

    return [pid for pid in tagged_processes(tag_prefix) if (_stat(str(pid)) or ("Z", 0))[0] != "Z"]
