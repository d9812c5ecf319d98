"""PUT and GET through the controller: file contents relayed over TLS.

A PUT's content is uploaded once to the controller, which keeps it under its
SHA-256 (in memory until the checkpoint after the PUT, on disk in the blob
store for as long as a snapshot may hand the file out); the multicast PUT
message names the digest and each node FETCHes the content.  A GET's files
come back from each node as FILE frames, which go on to the client that
asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from backend.controller.parsing import parse_get, parse_put
from backend.controller.sending import RequestSender
from backend.net.session import FrameSession
from backend.runtime.files import BlobStore
from seer.protocol.wire import Frame

log = Logger()

#: What a FILE frame passes on to the client.
FILE_FIELDS = ("name", "size", "sha256", "offset", "last")


class FileRelay:
    def __init__(self, state_dir: str | Path, blocking: Callable[..., Deferred],
                 refuse: Callable[[FrameSession, Frame, str], None],
                 count: Callable[[str], None]) -> None:
        self.blobs = BlobStore(Path(state_dir) / "blobs")
        self.blocking = blocking
        self.refuse = refuse
        self.count = count
        self.sender: RequestSender | None = None
        #: PUT contents kept in memory until they are on disk.
        self._cache: dict[str, bytes] = {}
        #: GET serial -> (client session, request id) for FILE frames.
        self._routes: dict[int, tuple[FrameSession, Any]] = {}

    def put(self, sock: FrameSession, msg: Frame) -> None:
        """Send a file (or an agent module) to the targeted nodes."""
        def keep(message: dict[str, Any]) -> None:
            digest = message["sha256"]
            self._cache[digest] = msg.blob
            self.blocking(self.blobs.put, msg.blob).addCallbacks(
                lambda _: self._cache.pop(digest, None),
                lambda f: log.failure("storing a PUT's content", f))

        self.sender.send(sock, msg, lambda h, t, now: parse_put(h, msg.blob, t, now),
                         on_valid=keep)

    def get(self, sock: FrameSession, msg: Frame) -> None:
        """Bring a file back from each targeted node; FILE frames then RESULT."""
        request_id = msg.get("id")

        def route(serial: int) -> None:
            self._routes[serial] = (sock, request_id)

        self.sender.send(sock, msg, parse_get, on_sent=route,
                         on_done=lambda serial: self._routes.pop(serial, None))

    def fetch(self, sock: FrameSession, msg: Frame) -> None:
        """A node fetches the content of a PUT by its SHA-256."""
        digest = msg.get("sha256")
        cached = self._cache.get(digest) if isinstance(digest, str) else None
        d = succeed(cached) if cached is not None else self.blocking(self.blobs.get, digest)

        def answer(data: bytes | None) -> None:
            if data is None:
                self.refuse(sock, msg, f"no content with SHA-256 {digest!r} here")
            else:
                sock.send({"type": "BLOB", "id": msg.get("id"), "sha256": digest}, data)

        d.addCallback(answer)

    def file(self, sock: FrameSession, msg: Frame) -> None:
        """A chunk of a file a node sends back for a GET: on to the client."""
        route = self._routes.get(msg.get("serial"))
        if route is None:
            self.count("files_without_request")
            return
        client, request_id = route
        header = {k: msg.get(k) for k in FILE_FIELDS}
        client.send(dict(header, type="FILE", id=request_id, node=sock.state["node"]), msg.blob)
