"""PUT and GET on a node: files and agent modules in, files out.

PUT: the content is fetched from the controller by its SHA-256 (FETCH over
the node's TLS connection), checked, and written atomically under the
node's ``files/`` folder -- or, for an agent module, under ``agents/``, then
loaded at once (no restart) and the new catalogue sent to the controller.
A file already there with the same digest is not fetched again.

GET: the file (below the node's work folder) goes back to the controller in
FILE frames of 1 MiB, then the outcome gives its size and digest.

Agent modules PUT earlier are loaded again when the daemon starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from backend.runtime.agentloader import AgentRegistry
from backend.runtime.files import check_name, file_sha256, read_chunks, sha256_of, write_atomically

log = Logger()

Outcome = tuple[str, "str | None", Any]


class NodeFiles:
    def __init__(
        self,
        workdir: Path,
        registry: AgentRegistry,
        request: Callable[[dict[str, Any]], Deferred],
        send: Callable[[dict[str, Any], bytes], bool],
        blocking: Callable[..., Deferred],
        catalogue_changed: Callable[[], None],
    ) -> None:
        self.workdir = workdir
        self.registry = registry
        self.request = request
        self.send = send
        self.blocking = blocking
        self.catalogue_changed = catalogue_changed

    @property
    def agents_dir(self) -> Path:
        return self.workdir / "agents"

    def path_for(self, kind: str, name: str) -> Path:
        return (self.agents_dir if kind == "agent" else self.workdir / "files") / name

    def load_saved_agents(self) -> list[str]:
        """Agent modules PUT before this daemon (re)started."""
        if not self.agents_dir.is_dir():
            return []
        return self.registry.load_directory(self.agents_dir)

    # -- PUT ----------------------------------------------------------------------------

    def put(self, serial: int, message: dict[str, Any]) -> Deferred:
        """Fires with (status, error, result) for a PUT message."""
        kind = message.get("kind", "file")
        name = check_name(message.get("name"), kind)
        return self._install(kind, name, message["sha256"], int(message.get("mode") or 0o644))

    def _install(self, kind: str, name: str, digest: str, mode: int) -> Deferred:
        path = self.path_for(kind, name)
        d = self.blocking(file_sha256, path)

        def fetch_unless_present(existing: str | None) -> Any:
            if existing == digest:
                return None
            return self.request({"type": "FETCH", "sha256": digest}).addCallback(
                lambda frame: self._write(path, frame.blob, digest, mode))

        d.addCallback(fetch_unless_present)
        if kind == "agent":
            d.addCallback(lambda _: self._load_agent(path))
        else:
            d.addCallback(lambda _: None)
        return d.addCallback(lambda loaded: ("applied", None, {
            "path": str(path), "sha256": digest,
            **({"agents": loaded} if kind == "agent" else {})}))

    def _write(self, path: Path, data: bytes, digest: str, mode: int) -> Deferred:
        if sha256_of(data) != digest:
            raise ValueError(f"the content fetched for {path.name} does not match its SHA-256")
        return self.blocking(write_atomically, path, data, mode)

    def _load_agent(self, path: Path) -> list[str]:
        self.registry.errors = [e for e in self.registry.errors if e.source != str(path)]
        loaded = self.registry.load_file(path)
        self.catalogue_changed()
        problems = [e.error for e in self.registry.errors if e.source == str(path)]
        if problems:
            raise ImportError(f"{path.name}: {problems[0]}")
        if not loaded:
            raise ImportError(f"{path.name} defines no Agent subclass with an AGENT_TYPE")
        return loaded

    def sync(self, files: list[dict[str, Any]]) -> Deferred:
        """Bring files listed in a snapshot up to date; fires with problems."""
        problems: list[str] = []
        d: Deferred = succeed(None)
        for entry in files:
            def install(_: Any, e: dict[str, Any] = entry) -> Deferred:
                kind = e.get("kind", "file")
                return self._install(kind, check_name(e.get("name"), kind), e["sha256"],
                                     int(e.get("mode") or 0o644)).addErrback(
                    lambda f: problems.append(f"snapshot file {e.get('name')}: "
                                              f"{f.getErrorMessage()}"))
            d.addCallback(install)
        return d.addCallback(lambda _: problems)

    # -- GET ----------------------------------------------------------------------------

    def get(self, serial: int, message: dict[str, Any]) -> Deferred:
        name = check_name(message.get("name"))
        path = self.workdir / name

        def send(result: tuple[list[bytes], str]) -> Outcome:
            chunks, digest = result
            size = sum(len(c) for c in chunks)
            header = {"type": "FILE", "serial": serial, "name": name, "size": size,
                      "sha256": digest}
            offset = 0
            for i, chunk in enumerate(chunks or [b""]):
                if not self.send(dict(header, offset=offset, last=i == max(0, len(chunks) - 1)),
                                 chunk):
                    raise ConnectionError("the connection to the controller closed")
                offset += len(chunk)
            return ("applied", None, {"size": size, "sha256": digest})

        return self.blocking(read_chunks, path).addCallback(send)
