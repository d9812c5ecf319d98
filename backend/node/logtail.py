"""The end of this node's agent logs, for the controller's TAIL request (the dashboard).

Each agent group works in ``WORKDIR/AGENT-GROUP/``, where its processes
write ``agent.log`` and a traffic generator's clients ``clients.log``.
TAIL asks for the last lines of every one of them (docs/PROTOCOL.md,
§2.1); the answer is bounded whatever the logs hold: at most
``MAX_FILES`` logs, the most recently written first, each at most
``MAX_BYTES`` read from its end -- the file is never read whole.

:func:`read_tails` reads files: the daemon runs it in a thread, never in
the reactor's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LOG_NAMES = ("agent.log", "clients.log")
MAX_FILES = 32
MAX_BYTES = 16384
MAX_LINES = 200


def limits(frame: Any) -> tuple[int, int]:
    """(lines, bytes) a TAIL frame asks for, within the limits."""
    def bounded(value: Any, default: int, most: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return default
        return min(value, most)

    return (bounded(frame.get("lines"), 40, MAX_LINES),
            bounded(frame.get("bytes"), 8192, MAX_BYTES))


def tail_of(path: Path, lines: int, size: int) -> tuple[int, str]:
    """(the file's size, its last ``lines`` lines within its last ``size`` bytes)."""
    with open(path, "rb") as f:
        end = f.seek(0, 2)
        start = max(0, end - size)
        f.seek(start)
        data = f.read(size)
    if start > 0:
        data = data.partition(b"\n")[2]  # the first line read is cut: drop it
    text = data.decode("utf-8", "replace")
    return end, "\n".join(text.splitlines()[-lines:])


def read_tails(workdir: Path, lines: int, size: int) -> list[dict[str, Any]]:
    """``[{"folder", "file", "size", "text"}]`` of the groups' logs, newest first."""
    found = []
    try:
        folders = [p for p in Path(workdir).iterdir() if p.is_dir()]
    except OSError:
        return []
    for folder in folders:
        for name in LOG_NAMES:
            path = folder / name
            try:
                found.append((path.stat().st_mtime, folder.name, name, path))
            except OSError:
                continue
    logs = []
    for _, folder, name, path in sorted(found, reverse=True)[:MAX_FILES]:
        try:
            total, text = tail_of(path, lines, size)
        except OSError as e:
            total, text = 0, f"(cannot read it: {e.strerror})"
        logs.append({"folder": folder, "file": name, "size": total, "text": text})
    return logs
