"""One connection to the controller: frames over blocking sockets.

Mutual TLS (the standard library's ``ssl``) normally; a unix socket and a
token for a script the controller itself runs (`seer run`).  Replies are
matched to requests by id, so many requests can be in flight; frames that
answer none (a sink's REPORT, STREAM and STATUS) queue for :meth:`events`.
"""

from __future__ import annotations

import itertools
import os
import socket
import ssl
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator

from seer.client.credentials import resolve, tls_context
from seer.client.errors import ControllerUnreachable, RequestRefused, SeerError
from seer.config import ConfigError, parse_hostport
from seer.protocol.certs import CONTROLLER_NAME
from seer.protocol.wire import Frame, FrameDecoder, WireError, encode_frame, non_finite

#: Frames that never answer a request, whatever id they carry.
SINK_FRAMES = ("REPORT", "STREAM", "STATUS")


class Connection:
    """One connection to the controller, speaking frames, blocking.

    Mutual TLS normally; ``unix:PATH`` with a token (``SEER_TOKEN``) for a
    script the controller itself runs (`seer run`).
    """

    def __init__(
        self,
        controller: str | None = None,
        certs: str | Path | None = None,
        identity: str | None = None,
        connect_timeout: float = 10.0,
        server_name: str = CONTROLLER_NAME,
        testbed: str | None = None,
    ) -> None:
        where = resolve(controller, certs, identity, testbed)
        self._decoder = FrameDecoder()
        self._replies: dict[Any, deque[Frame]] = {}
        self._events: deque[Frame] = deque()
        self._ids = itertools.count(1)
        if where.controller.startswith("unix:"):
            self._connect_local(where.controller[len("unix:"):], connect_timeout)
            return
        try:
            host, port = parse_hostport(where.controller, "controller")
        except ConfigError as e:  # a controller we cannot even try to reach
            raise ControllerUnreachable(str(e)) from None
        context, self.identity = tls_context(where.certs, where.identity)
        self.address = f"{host}:{port}"
        try:
            raw = socket.create_connection((host, port), timeout=connect_timeout)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle waits
        except OSError as e:
            raise ControllerUnreachable(
                f"cannot connect to the controller at {self.address}: {e.strerror or e}; "
                "is `seer controller` running there?"
            ) from None
        try:
            self._sock = context.wrap_socket(raw, server_hostname=server_name)
        except (ssl.SSLError, OSError) as e:
            raw.close()
            raise ControllerUnreachable(
                f"TLS with {self.address} failed: {e}; are the certificates from the "
                "same `seer certs init` as the controller's?"
            ) from None

    def _connect_local(self, path: str, timeout: float) -> None:
        token = os.environ.get("SEER_TOKEN")
        if not token:
            raise SeerError("SEER_CONTROLLER is a unix: socket but SEER_TOKEN is not set; "
                            "such sockets are for scripts run with `seer run`")
        self.address = f"unix:{path}"
        self.identity = os.environ.get("SEER_IDENTITY") or "experimenter"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError as e:
            raise ControllerUnreachable(f"cannot connect to {self.address}: {e}") from None
        self.request({"type": "HELLO", "token": token}, timeout)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def send(self, header: dict[str, Any], blob: bytes = b"") -> Any:
        """Send a request; returns its id."""
        bad = non_finite(header)
        if bad is not None:
            raise RequestRefused(f"{bad}: SEER carries only finite numbers (JSON has no NaN "
                                 "or Infinity); nothing was sent")
        request_id = next(self._ids)
        try:
            self._sock.sendall(encode_frame(dict(header, id=request_id), blob))
        except OSError as e:
            raise ControllerUnreachable(f"lost the controller at {self.address}: {e}") from None
        return request_id

    def wait(self, request_id: Any, timeout: float) -> Frame:
        """The next frame answering ``request_id``, within ``timeout`` seconds."""
        frame = self.poll(request_id, timeout)
        if frame is None:
            raise ControllerUnreachable(
                f"no answer from the controller at {self.address} within {timeout:.0f} s"
            )
        return frame

    def poll(self, request_id: Any, timeout: float) -> Frame | None:
        """Like :meth:`wait`, but None when nothing came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            queue = self._replies.get(request_id)
            if queue:
                frame = queue.popleft()
                if not queue:
                    del self._replies[request_id]
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._read(remaining, quiet_timeout=True)

    def request(self, header: dict[str, Any], timeout: float = 30.0) -> Frame:
        """Send and wait for the reply; ERROR replies raise RequestRefused."""
        frame = self.wait(self.send(header), timeout)
        if frame.type == "ERROR":
            raise RequestRefused(frame.get("error"))
        return frame

    def events(self, timeout: float | None = None) -> Iterator[Frame]:
        """Frames not answering a request (REPORT, STREAM, STATUS to sinks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._events:
                yield self._events.popleft()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self._read(remaining if remaining is not None else 3600.0, quiet_timeout=True)

    def _read(self, timeout: float, quiet_timeout: bool = False) -> None:
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(1 << 16)
        except TimeoutError:
            if quiet_timeout:
                return
            raise ControllerUnreachable(f"the controller at {self.address} stopped answering") from None
        except (OSError, ssl.SSLError) as e:
            raise ControllerUnreachable(f"lost the controller at {self.address}: {e}") from None
        if not data:
            raise ControllerUnreachable(f"the controller at {self.address} closed the connection")
        try:
            frames = self._decoder.feed(data)
        except WireError as e:
            raise ControllerUnreachable(f"garbled data from {self.address}: {e}") from None
        for frame in frames:
            # Sink frames never answer a request, whatever they carry.
            if frame.get("id") is not None and frame.type not in SINK_FRAMES:
                self._replies.setdefault(frame.get("id"), deque()).append(frame)
            else:
                self._events.append(frame)
