"""Writing FILE frames into local files.

A GET's files and a run's results come back as FILE frames: a name, an
offset, the chunk, and ``last`` on the final one.  :class:`ChunkWriter` is
the one writer of them, for ``Experiment.get`` and `seer run` alike: each
file is created (emptied) at its first chunk, every chunk written at its
offset, and the file closed at its last chunk or by :meth:`close`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO


class ChunkWriter:
    """The open files of chunks that are still coming, by local path."""

    def __init__(self) -> None:
        self._open: dict[Path, BinaryIO] = {}

    def write(self, path: Path, frame: Any) -> None:
        """Write one FILE frame's chunk into ``path`` (its folder made if need be)."""
        handle = self._open.get(path)
        if handle is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A chunk past the start of a file this writer has not opened
            # continues it (a file it closed already, or one of an earlier run).
            handle = open(path, "r+b" if frame.get("offset") and path.exists() else "wb")
            self._open[path] = handle
        handle.seek(frame.get("offset") or 0)
        handle.write(frame.blob)
        if frame.get("last"):
            self._open.pop(path).close()

    def close(self) -> None:
        """Close every file still open (its last chunk never came)."""
        while self._open:
            self._open.popitem()[1].close()

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
