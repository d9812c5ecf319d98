"""Server-Sent Events: the page's live feed, one twisted.web resource.

``GET /dashboard/events`` answers ``text/event-stream`` and stays open:
each event is ``event: NAME`` and one ``data:`` line of JSON, then a blank
line (the EventSource format).  The page gets ``hello`` when it connects
(the controller, the latest commands, the scripts running and their
output so far, and the first ``tick``), then ``tick`` about once a second,
``command`` when a command's outcomes are in, and ``output`` and ``run``
while `seer run` scripts print and end.

The request tells us when the browser goes away (``notifyFinish``): its
client is dropped.  A browser that stops reading (a background tab, a
stalled network) must not make the controller buffer without bound: each
client is a streaming producer of its request, so when the transport's
buffer is full Twisted pauses it, and its events are skipped (counted)
until it resumes -- the next tick carries the whole picture again, and the
page is told how many it missed.  At most ``max_clients`` streams are open.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from seer.protocol.wire import dumps

log = Logger()

#: Tells EventSource how long to wait before reconnecting, in milliseconds.
RETRY_MS = 2000


def encode_event(name: str, data: Any) -> bytes:
    """One event, as the EventSource format has it (the JSON has no raw newline)."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"


class StreamClient:
    """One open event stream: writes while its browser reads, skips while it does not."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.paused = False
        self.gone = False
        self.skipped = 0

    # IPushProducer: Twisted pauses us when the transport's buffer is full.
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        self.gone = True

    def write(self, data: bytes) -> bool:
        if self.gone:
            return False
        if self.paused:
            self.skipped += 1
            return False
        if self.skipped:
            missed, self.skipped = self.skipped, 0
            self.request.write(encode_event("gap", {"skipped": missed}))
        self.request.write(data)
        return True


class EventStream(Resource):
    """GET: an event stream that stays open; :meth:`publish` writes to every one."""

    isLeaf = True

    def __init__(self, hello: Callable[[], dict[str, Any]], max_clients: int = 32) -> None:
        super().__init__()
        self.hello = hello
        self.max_clients = max_clients
        self.clients: set[StreamClient] = set()
        self.opened = 0
        self.refused = 0

    def render_GET(self, request: Any) -> Any:
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (f"{len(self.clients)} dashboards are open, the most this controller "
                    f"serves; close one\n").encode()
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        client = StreamClient(request)
        request.registerProducer(client, True)
        self.clients.add(client)
        self.opened += 1
        request.notifyFinish().addBoth(self._gone, client)
        request.write(f"retry: {RETRY_MS}\n\n".encode())
        client.write(encode_event("hello", self.hello()))
        return NOT_DONE_YET

    def _gone(self, _: Any, client: StreamClient) -> None:
        client.gone = True
        self.clients.discard(client)

    def publish(self, name: str, data: Any) -> int:
        """Send one event to every open stream (encoded once); how many took it."""
        if not self.clients:
            return 0
        event = encode_event(name, data)
        return sum(1 for client in list(self.clients) if client.write(event))

    def close_all(self) -> None:
        """The controller stops: end every stream (EventSource will retry)."""
        for client in list(self.clients):
            self.clients.discard(client)
            client.gone = True
            try:
                client.request.unregisterProducer()
                client.request.finish()
            except Exception:  # already finished, or its connection already lost
                log.debug("closing an event stream that was already closed")
