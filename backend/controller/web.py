"""The controller's HTTP port: a twisted.web resource tree, as a child service.

Today the tree has ``/metrics`` (the Prometheus exposition, no token, like
any exporter) and an index; the dashboard adds its own resources to
:attr:`WebService.root` (``root.putChild(b"dashboard", ...)``) before the
controller starts.  Bound to 127.0.0.1 unless the ``http`` setting says
otherwise; port 0 picks a free port, and :attr:`WebService.url` says which
(``http_url`` overrides it when clients reach the port another way, e.g.
through the testbed's relay).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.exposition import choose_encoder
from twisted.web.resource import Resource
from twisted.web.server import Site

from backend.controller.ports import ListeningPort


class MetricsResource(Resource):
    """GET /metrics: the exposition, in the format the scraper asks for."""

    isLeaf = True

    def __init__(self, registry: Any) -> None:
        super().__init__()
        self.registry = registry
        self.scrapes = 0

    def render_GET(self, request: Any) -> bytes:
        accept = (request.getHeader(b"accept") or b"").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        self.scrapes += 1
        request.setHeader(b"content-type", content_type.encode())
        return body


class IndexResource(Resource):
    """GET /: what this port serves."""

    def __init__(self) -> None:
        super().__init__()

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"":
            return self
        return super().getChild(path, request)

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        routes = sorted(name.decode() for name in self.children if name)
        return ("SEER controller\n" + "".join(f"/{r}\n" for r in routes)).encode()


class QuietSite(Site):
    """A Site that does not log each request: Prometheus scrapes every second."""

    def log(self, request: Any) -> None:
        pass


class WebService(ListeningPort):
    """Listens on HOST:PORT with the resource tree; stops listening at stop."""

    def __init__(self, reactor: Any, host: str, port: int, registry: Any,
                 public_url: str = "") -> None:
        self.root = IndexResource()
        self.metrics = MetricsResource(registry)
        self.root.putChild(b"metrics", self.metrics)
        self.host = host
        self.public_url = public_url.rstrip("/")
        # The Site's request timeouts run on the injected reactor too.
        site = QuietSite(self.root, reactor=reactor)
        site.displayTracebacks = False
        site.noisy = False
        super().__init__("http", lambda: reactor.listenTCP(port, site, interface=host))

    @property
    def url(self) -> str | None:
        """The base URL clients are given (None until it listens)."""
        if self.public_url:
            return self.public_url
        if self.port is None:
            return None
        address = self.port.getHost()
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"http://{host}:{address.port}"
