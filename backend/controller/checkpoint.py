"""Controller state that survives a restart: checkpoints and a send journal.

A checkpoint holds the epoch, the last serial, the node table and the state
model.  It is written atomically (temporary file, fsync, rename, fsync of the
directory) as ``checkpoint-<seq>.json`` where ``seq`` only grows.  On start
the newest *valid* checkpoint is chosen by that sequence number -- never by
file time, which cannot order several checkpoints written within one second
-- and a damaged one is skipped with a log line.

Between checkpoints every datagram's messages are appended to
``journal-<seq>.log`` *before* the datagram is sent, so a controller killed
with SIGKILL and restarted replays the journal and continues the serial
sequence without reusing a serial.  A torn record at the end of a journal
(the kill landed mid-write) is ignored: its datagram was never sent.

The journal also keeps, in the same order, what changes the node table and
the ends of runs between checkpoints -- a registration with its agent
catalogue, a new catalogue, a node forgotten on purpose, a run a node
reported over -- so that a restart restores them exactly too.

Journal record::

    length  u32 BE   bytes after the crc
    crc     u32 BE   zlib.crc32 of those bytes
    epoch   u64 BE
    serial  u64 BE   first serial of the datagram (events: the last serial sent)
    sent_at f64 BE   controller clock, seconds
    json    rest     a datagram's message array, or an event object:
                     {"registered": INFO}, {"catalogue": {...}},
                     {"forgotten": NAME} or {"run_ended": {...}}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from twisted.logger import Logger

from seer.protocol.wire import dumps

log = Logger()

FORMAT = 1
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)\.json$")
_JOURNAL = re.compile(r"^journal-(\d+)\.log$")
_RECORD_HEAD = struct.Struct(">II")
_RECORD_FIXED = struct.Struct(">QQd")


class CheckpointError(Exception):
    """A state directory that cannot be used."""


class JournalError(OSError):
    """A journal record could not be written (disk full?); nothing was sent."""


def _state_digest(state: dict[str, Any]) -> str:
    return hashlib.sha256(dumps(state)).hexdigest()


def _numbered(directory: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    found = []
    for path in directory.iterdir():
        m = pattern.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointStore:
    def __init__(self, directory: Path | str, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = keep
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(
                f"cannot create state directory {self.directory}: {e.strerror}"
            ) from None
        if not os.access(self.directory, os.W_OK):
            raise CheckpointError(f"state directory {self.directory} is not writable")

    def newest(self) -> tuple[int, dict[str, Any]] | None:
        """(seq, state) of the newest valid checkpoint, or None."""
        for seq, path in reversed(_numbered(self.directory, _CHECKPOINT)):
            try:
                document = json.loads(path.read_text())
                if document.get("format") != FORMAT or document.get("seq") != seq:
                    raise ValueError("format or sequence number does not match its name")
                state = document["state"]
                if _state_digest(state) != document.get("sha256"):
                    raise ValueError("checksum mismatch")
                return seq, state
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                log.warn("skipping damaged checkpoint {path}: {error}", path=str(path), error=str(e))
        return None

    def next_seq(self) -> int:
        """One more than any sequence number ever used here, valid or not."""
        used = [s for s, _ in _numbered(self.directory, _CHECKPOINT)]
        used += [s for s, _ in _numbered(self.directory, _JOURNAL)]
        return max(used, default=0) + 1

    def write(self, seq: int, state: dict[str, Any], written_at: float) -> Path:
        """Write checkpoint ``seq`` atomically.  Blocking: run it in a thread."""
        document = {
            "format": FORMAT,
            "seq": seq,
            "written_at": written_at,
            "sha256": _state_digest(state),
            "state": state,
        }
        final = self.directory / f"checkpoint-{seq:012d}.json"
        temporary = self.directory / f".checkpoint-{seq:012d}.tmp"
        with open(temporary, "wb") as f:
            f.write(dumps(document))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, final)
        _fsync_directory(self.directory)
        return final

    def prune(self) -> None:
        """Keep the newest ``keep`` checkpoints and the journals they need."""
        checkpoints = _numbered(self.directory, _CHECKPOINT)
        if len(checkpoints) <= self.keep:
            return
        oldest_kept = checkpoints[-self.keep][0]
        for _, path in checkpoints[: -self.keep]:
            path.unlink(missing_ok=True)
        for seq, path in _numbered(self.directory, _JOURNAL):
            if seq < oldest_kept:
                path.unlink(missing_ok=True)


@dataclass(frozen=True)
class JournalRecord:
    epoch: int
    serial: int
    sent_at: float
    messages: list[dict[str, Any]]
    #: The journal's sequence number (which checkpoint it follows).
    seq: int = 0
    #: An event record's object; None for a datagram's messages.
    event: dict[str, Any] | None = None

    @property
    def last_serial(self) -> int:
        return self.serial + len(self.messages) - 1


class Journal:
    """Append-only log of sent datagrams, one file per checkpoint sequence."""

    def __init__(self, directory: Path | str, seq: int) -> None:
        self.path = Path(directory) / f"journal-{seq:012d}.log"
        self.seq = seq
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)

    def append_event(self, epoch: int, serial: int, at: float, event: dict[str, Any]) -> None:
        """Journal one event (a registration, a run's end ...); JournalError if it cannot."""
        self.append(epoch, serial, at, dumps(event))

    def append(self, epoch: int, serial: int, sent_at: float, messages_json: bytes) -> None:
        """Write one record completely, or raise JournalError and leave the
        journal as it was (a torn record would hide every later one)."""
        payload = _RECORD_FIXED.pack(epoch, serial, sent_at) + messages_json
        record = memoryview(_RECORD_HEAD.pack(len(payload), zlib.crc32(payload)) + payload)
        fd = self._file.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        written = 0
        try:
            # Unbuffered writes: once they return, the kernel has the record,
            # so a SIGKILL afterwards cannot lose it.
            while written < len(record):
                n = os.write(fd, record[written:])
                if not n:
                    raise OSError("wrote nothing")
                written += n
        except OSError as e:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise JournalError(f"cannot append to {self.path}: {e}") from None

    def close(self) -> None:
        self._file.close()


def read_journals(directory: Path | str, from_seq: int) -> Iterator[JournalRecord]:
    """Records of every journal with sequence >= ``from_seq``, in order."""
    for seq, path in _numbered(Path(directory), _JOURNAL):
        if seq < from_seq:
            continue
        data = path.read_bytes()
        offset = 0
        while offset + _RECORD_HEAD.size <= len(data):
            length, crc = _RECORD_HEAD.unpack_from(data, offset)
            start = offset + _RECORD_HEAD.size
            payload = data[start : start + length]
            if len(payload) < max(length, _RECORD_FIXED.size) or zlib.crc32(payload) != crc:
                log.warn("journal {path}: torn record at byte {offset} ignored",
                         path=str(path), offset=offset)
                break
            epoch, serial, sent_at = _RECORD_FIXED.unpack_from(payload)
            try:
                body = json.loads(payload[_RECORD_FIXED.size :])
            except ValueError:
                break
            if isinstance(body, dict):
                yield JournalRecord(epoch, serial, sent_at, [], seq, body)
            else:
                yield JournalRecord(epoch, serial, sent_at, body, seq)
            offset = start + length
