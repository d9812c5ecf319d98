"""The HTTP agent's server: GET /N answers N bytes (twisted.web).

    python -m agents.tools.httpserver ADDRESS PORT

Every request is logged on standard output as a JSON line the agent counts:
{"served": N, "client": "198.18.1.2", "status": 200}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from twisted.internet import interfaces
from twisted.web import resource, server
from zope.interface import implementer

from agents.tools.common import server_main

CHUNK = b"x" * 65536
MAX_SIZE = 1 << 30


@implementer(interfaces.IPushProducer)
class SizedBody:
    """Writes N bytes to a request, paced by the transport (no buffering N)."""

    def __init__(self, request: server.Request, size: int) -> None:
        self.request = request
        self.left = size
        self.paused = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.resumeProducing()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self.left > 0:
            chunk = CHUNK[: min(self.left, len(CHUNK))]
            self.left -= len(chunk)
            self.request.write(chunk)
        if self.left <= 0 and not self.request.finished:
            self.request.unregisterProducer()
            self.request.finish()

    def stopProducing(self) -> None:
        self.left = 0


class Sized(resource.Resource):
    isLeaf = True

    def render_GET(self, request: server.Request) -> object:
        path = request.postpath[0].decode(errors="replace") if request.postpath else ""
        client = request.getClientAddress().host
        if not path.isdigit() or int(path) > MAX_SIZE:
            request.setResponseCode(404)
            log(request, 0, 404, client)
            return b"ask for /SIZE in bytes, at most 1 GiB\n"
        size = int(path)
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"content-length", str(size).encode())
        log(request, size, 200, client)
        SizedBody(request, size).start()
        return server.NOT_DONE_YET


def log(request: server.Request, size: int, status: int, client: str) -> None:
    print(json.dumps({"served": size, "status": status, "client": client}), flush=True)


def start(reactor: Any, address: str, port: int) -> dict[str, Any]:
    site = server.Site(Sized())
    site.displayTracebacks = False
    reactor.listenTCP(port, site, interface=address)
    return {}


def main(argv: list[str]) -> int:
    return server_main(argv, __doc__, (), start)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
