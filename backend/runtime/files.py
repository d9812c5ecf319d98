"""Files moved by PUT and GET: safe names, the controller's blob store,
and the node side's atomic writes and chunked reads.

A PUT's content is uploaded once to the controller, which keeps it under its
SHA-256 in ``state_dir/blobs``; the multicast PUT message names the digest
and every node fetches the content over its TLS connection, checks the
digest and writes the file atomically. A GET makes each node send the file
back over TLS in chunks, which the controller passes to the client.

Names are relative paths of plain components (letters, digits, ``._-``),
never absolute and never ``..``: PUT puts files under the node's
``files/`` folder (agent modules under ``agents/``), GET reads below the
node's work folder.

Every function here blocks (disk I/O): call it in a thread from a reactor.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

#: The largest file one PUT carries (it travels in one frame).
MAX_PUT = 15 * 1024 * 1024
#: The largest file one GET brings back.
MAX_GET = 256 * 1024 * 1024
CHUNK = 1024 * 1024
KINDS = ("file", "agent")

_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class FileNameError(ValueError):
    """A file name that could escape its folder or is otherwise unusable."""


def check_name(name: object, kind: str = "file") -> str:
    """A safe relative path; agent modules are a single ``NAME.py``."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise FileNameError(f"file name must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if any(not _COMPONENT.match(p) for p in parts):
        raise FileNameError(
            f"{name!r} is not a safe relative path: use components of letters, digits, "
            "'.', '_', '-' (no leading '.', no '..', not absolute)"
        )
    if kind == "agent" and (len(parts) != 1 or not name.endswith(".py")):
        raise FileNameError(f"an agent module is one file NAME.py, not {name!r}")
    if kind not in KINDS:
        raise FileNameError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return name


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


class BlobStore:
    """Content by SHA-256, on disk under the controller's state folder."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path(self, digest: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", digest or ""):
            raise FileNameError(f"{digest!r} is not a SHA-256 digest")
        return self.directory / digest

    def put(self, data: bytes) -> str:
        digest = sha256_of(data)
        target = self.path(digest)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            write_atomically(target, data, 0o600)
        return digest

    def prune(self, keep: set[str], older_than: float) -> int:
        """Delete contents no snapshot needs any more and older than the cut-off."""
        removed = 0
        if not self.directory.is_dir():
            return 0
        for path in self.directory.iterdir():
            if path.name not in keep and not path.name.startswith("."):
                try:
                    if path.stat().st_mtime < older_than:
                        path.unlink()
                        removed += 1
                except OSError:
                    continue
        return removed

    def get(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except (OSError, FileNameError):
            return None


def read_chunks(path: Path, limit: int = MAX_GET) -> tuple[list[bytes], str]:
    """The file's content in chunks and its SHA-256; errors name the problem."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    if not path.is_file():
        raise IsADirectoryError(f"{path} is not a regular file")
    if size > limit:
        raise ValueError(f"{path} is {size} bytes; GET brings back at most {limit}")
    chunks, digest = [], hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            chunks.append(chunk)
            digest.update(chunk)
    return chunks, digest.hexdigest()
