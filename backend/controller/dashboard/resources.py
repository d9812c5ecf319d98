"""The dashboard's routes under ``/dashboard/``, behind its token: one resource per route.

    /dashboard/?token=T        the page (sets the token's cookie for what it loads)
    /dashboard/static/...      its JavaScript, CSS and the vendored libraries
    /dashboard/events          the live feed (Server-Sent Events)
    /dashboard/api/topology    nodes, LANs and links
    /dashboard/api/state       this second's node states and link rates
    /dashboard/api/node?name=N one node's groups, counters, outcomes
    /dashboard/api/logs?node=N the tail of its agent logs (asked of its daemon)
    /dashboard/api/link?name=L one link's rate and drops over the last 10 minutes

Every request shows the token -- ``?token=`` or the cookie the page got
with it (the way Jupyter does it) -- or is answered 403 before any route
is looked at.  The token is random per controller start, compared in
constant time, never logged (the HTTP port logs no requests).  Only GET
and HEAD are served: the page is read-only.  Answers carry no-referrer (a
token in a URL must not leak in a Referer) and a content security policy
that lets the page load and connect to nothing but this controller.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.static import File

from seer.protocol.wire import dumps

log = Logger()

STATIC = Path(__file__).resolve().parent / "static"
CSP = (b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       b"img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; "
       b"form-action 'none'; frame-ancestors 'none'")


def _secure(request: Any) -> None:
    request.setHeader(b"referrer-policy", b"no-referrer")
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"x-frame-options", b"DENY")


class Refusal(Resource):
    """An answer that refuses, in plain text: 403 without the token, 405 for a change."""

    isLeaf = True

    def __init__(self, code: int, text: str) -> None:
        super().__init__()
        self.code = code
        self.text = text.encode()

    def render(self, request: Any) -> bytes:
        _secure(request)
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return self.text


def Forbidden() -> Refusal:
    return Refusal(403, "This SEER dashboard needs its token: open the URL that `seer "
                        "dashboard` (or `seer status --json`, \"dashboard\") prints.\n")


class StaticFiles(File):
    """The static folder, without directory listings."""

    def directoryListing(self) -> Resource:
        return Forbidden()

    def render(self, request: Any) -> Any:
        _secure(request)
        return super().render(request)


class Page(Resource):
    """The page itself: index.html, which sets the cookie its scripts need."""

    isLeaf = True

    def __init__(self, remember: Callable[[Any], None]) -> None:
        super().__init__()
        self.remember = remember
        # Read once, when the controller is built: not a file read per request
        # in the reactor thread.
        self.body = (STATIC / "index.html").read_bytes()

    def render_GET(self, request: Any) -> bytes:
        _secure(request)
        self.remember(request)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", CSP)
        request.setHeader(b"cache-control", b"no-store")
        return self.body


def query(request: Any, name: str) -> str | None:
    values = request.args.get(name.encode())
    return values[0].decode("utf-8", "replace") if values else None


class JSONResource(Resource):
    """GET: ``answer(request)``'s JSON (a dict, a Deferred of one, or None: 404)."""

    isLeaf = True

    def __init__(self, answer: Callable[[Any], Any]) -> None:
        super().__init__()
        self.answer = answer

    def render_GET(self, request: Any) -> Any:
        _secure(request)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        finished: list[bool] = []
        request.notifyFinish().addBoth(lambda _: finished.append(True))

        def write(body: Any) -> None:
            if finished:
                return  # the browser went away while a node was asked
            if body is None:
                request.setResponseCode(404)
                body = {"error": "no such thing here"}
            elif "error" in body and body.get("status"):
                request.setResponseCode(body.pop("status"))
            request.write(dumps(body))
            request.finish()

        def failed(failure: Any) -> None:
            log.failure("dashboard {path} failed", failure, path=request.path.decode())
            if not finished:
                request.setResponseCode(500)
                request.write(dumps({"error": "the controller failed to answer this; see "
                                              "its log"}))
                request.finish()

        maybeDeferred(self.answer, request).addCallbacks(write, failed)
        return NOT_DONE_YET


class DashboardRoot(Resource):
    """``/dashboard``: the token check in front of every route."""

    def __init__(self, token: str, cookie: str, events: Resource,
                 api: dict[str, Callable[[Any], Any]]) -> None:
        super().__init__()
        self.token = token.encode()
        self.cookie = cookie.encode()
        self.refused = 0
        self.page = Page(self._remember)
        self.putChild(b"static", StaticFiles(str(STATIC)))
        self.putChild(b"events", events)
        api_root = Resource()
        for name, answer in api.items():
            api_root.putChild(name.encode(), JSONResource(answer))
        self.putChild(b"api", api_root)

    def allowed(self, request: Any) -> bool:
        given = (request.args.get(b"token") or [b""])[0] or request.getCookie(self.cookie) or b""
        return hmac.compare_digest(given, self.token)

    def _remember(self, request: Any) -> None:
        """The page's own requests (scripts, styles) carry no query: the cookie stands in."""
        request.addCookie(self.cookie, self.token, path="/dashboard/", httpOnly=True,
                          sameSite="strict")

    def getChildWithDefault(self, path: bytes, request: Any) -> Resource:
        if not self.allowed(request):
            self.refused += 1
            return Forbidden()
        if request.method not in (b"GET", b"HEAD"):
            return Refusal(405, "The dashboard is read-only: it answers GET only.\n")
        if path == b"":
            return self.page
        return super().getChildWithDefault(path, request)

    def render_GET(self, request: Any) -> bytes:
        """``/dashboard`` without its slash: to the page, with the query kept."""
        if not self.allowed(request):
            self.refused += 1
            return Forbidden().render(request)
        _secure(request)
        query_string = request.uri.partition(b"?")[2]
        request.redirect(b"dashboard/" + (b"?" + query_string if query_string else b""))
        return b""
