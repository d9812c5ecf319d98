"""The dashboard's web side on fakes: its token, its routes, its event stream.

A Controller on a FakeReactor with an HTTP port; requests go through a
real twisted.web Site over a StringTransport (the whole resource tree, the
HTTP parsing and the producers), so what is checked is what a browser
would get -- without a socket or a clock of its own.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionDone

from backend.controller.web import QuietSite
from seer.protocol.wire import Frame

BASE = "http://127.0.0.1:8123"


@pytest.fixture
def web(tmp_path, certs_dir):
    """A controller with an HTTP port (and so a dashboard), two nodes registered."""
    from controller_lab import Lab, make_controller
    from seer.testing import FakeReactor

    reactor = FakeReactor()
    reactor.advance(1_000_000)
    c = make_controller(reactor, certs_dir, tmp_path / "state", nodefile=["n1", "n2", "n3"],
                        stats={"http": "127.0.0.1:0", "http_url": BASE})
    lab = Lab(c, reactor)
    lab.register("n1", interfaces=[{"name": "eth1", "addresses": ["198.18.1.1/24"]}])
    lab.register("n2", interfaces=[{"name": "eth1", "addresses": ["198.18.1.2/24"]}])
    lab.site = QuietSite(c.stats.web.root, reactor=reactor)  # its timeouts on the fake clock
    for session in c.node_sessions.values():
        session.bytes_in = session.bytes_out = 0  # what STATUS sums of real sessions
    lab.token = c.dashboard.token
    yield lab
    if c.running:
        c.stopService()


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(": ")
            self.headers.setdefault(name.lower(), []).append(value)
        if self.headers.get("transfer-encoding") == ["chunked"]:
            body = dechunk(body)
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        if not size:
            break
        n = int(size, 16)
        out, data = out + rest[:n], rest[n + 2:]
        if n == 0:
            break
    return out


def request(lab, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    """Send one request through the site; (response, protocol, transport)."""
    protocol = lab.site.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
    raw = transport.value()
    return (Response(raw) if raw else None), protocol, transport


def get(lab, path: str, **kwargs) -> Response:
    return request(lab, path, **kwargs)[0]


def with_token(lab, path: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}token={lab.token}"


# -- the token --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard", "/dashboard/api/topology",
                                  "/dashboard/events", "/dashboard/static/js/app.js",
                                  "/dashboard/api/node?name=n1"])
def test_without_the_token_every_route_is_403(web, path):
    response = get(web, path)
    assert response.status == 403
    assert b"needs its token" in response.body
    assert web.c.dashboard.root.refused >= 1


def test_a_wrong_token_is_403(web):
    assert get(web, "/dashboard/?token=" + "x" * len(web.token)).status == 403
    assert get(web, "/dashboard/?token=").status == 403


def test_the_page_with_its_token_sets_a_cookie_its_scripts_use(web):
    page = get(web, with_token(web, "/dashboard/"))
    assert page.status == 200 and b"static/js/app.js" in page.body
    assert "default-src 'none'" in page.header("content-security-policy")
    assert page.header("referrer-policy") == "no-referrer"
    cookie = page.header("set-cookie")
    assert web.token in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    name_value = cookie.split(";")[0]
    # HEAD: a static file's body would be sent by a producer on Twisted's global
    # cooperator; its headers say as much (served, what type, how long).
    script = get(web, "/dashboard/static/js/app.js", method="HEAD",
                 headers={"Cookie": name_value})
    assert script.status == 200 and "javascript" in script.header("content-type")
    assert int(script.header("content-length")) > 1000
    assert get(web, "/dashboard/static/js/app.js", method="HEAD").status == 403


def test_the_token_is_random_per_controller(tmp_path, certs_dir):
    from controller_lab import make_controller
    from seer.testing import FakeReactor

    tokens = set()
    for i in range(2):
        c = make_controller(FakeReactor(), certs_dir, tmp_path / f"state{i}",
                            stats={"http": "127.0.0.1:0", "http_url": BASE})
        tokens.add(c.dashboard.token)
        assert len(c.dashboard.token) >= 32
        c.stopService()
    assert len(tokens) == 2


def test_dashboard_without_its_slash_redirects_keeping_the_token(web):
    response = get(web, with_token(web, "/dashboard"))
    assert response.status == 302
    assert response.header("location").endswith(f"dashboard/?token={web.token}")


def test_the_dashboard_is_read_only(web):
    for method in ("POST", "PUT", "DELETE"):
        response = get(web, with_token(web, "/dashboard/api/topology"), method=method)
        assert response.status == 405 and b"read-only" in response.body, method


def test_static_folders_are_not_listed(web):
    assert get(web, with_token(web, "/dashboard/static/js/")).status == 403
    assert get(web, with_token(web, "/dashboard/static/../service.py")).status in (403, 404)


def test_status_gives_the_pages_url_with_its_token(web):
    client = web.client()
    web.request(client, {"type": "STATUS", "id": 1})
    (reply,) = client.of_type("REPLY")
    assert reply.get("dashboard") == f"{BASE}/dashboard/?token={web.token}"
    assert reply.get("metrics") == f"{BASE}/metrics"


def test_without_an_http_port_there_is_no_dashboard(lab):
    assert lab.c.dashboard is None
    client = lab.client()
    lab.request(client, {"type": "STATUS", "id": 1})
    assert client.of_type("REPLY")[0].get("dashboard") is None


# -- the routes -------------------------------------------------------------------------


def test_topology_is_inferred_from_the_nodes_subnets(web):
    topology = get(web, with_token(web, "/dashboard/api/topology")).json()
    assert topology["source"] == "inferred"
    assert [n["name"] for n in topology["nodes"]] == ["n1", "n2", "n3"]  # n3: never registered
    (link,) = topology["links"]
    assert (link["name"], link["kind"], link["members"]) == ("198.18.1.0/24", "lan",
                                                            ["n1", "n2"])
    assert topology["version"] and topology["controller"] == "ctl"


def test_node_and_link_answer_404_for_what_is_not_there(web):
    assert get(web, with_token(web, "/dashboard/api/node?name=nobody")).status == 404
    assert get(web, with_token(web, "/dashboard/api/link?name=nolink")).status == 404
    assert get(web, with_token(web, "/dashboard/api/logs?node=nobody")).status == 404


def test_node_answers_its_state_and_groups(web):
    client = web.client()
    web.request(client, {"type": "SET", "id": 2, "agent": "NOOP", "group": "g",
                         "vars": {"note": {"*": "all", "n2": "mine"}}, "target": "*"})
    node = get(web, with_token(web, "/dashboard/api/node?name=n2")).json()
    assert node["state"] == "up" and node["name"] == "n2"
    (group,) = node["groups"]
    assert (group["agent"], group["group"], group["vars"]) == ("NOOP", "g", {"note": "mine"})


def test_logs_of_a_node_are_asked_of_its_daemon(web):
    _, _, transport = request(web, with_token(web, "/dashboard/api/logs?node=n1"))
    session = web.c.node_sessions["n1"]
    (tail,) = session.of_type("TAIL")
    assert transport.value() == b""  # waiting for the node
    web.c.frameReceived(session, Frame({"type": "TAIL", "id": tail.get("id"), "logs": [
        {"folder": "NOOP-g", "file": "agent.log", "size": 5, "text": "hello"}]}))
    answer = Response(transport.value())
    assert answer.status == 200
    assert answer.json()["logs"][0]["text"] == "hello"


# -- the event stream -------------------------------------------------------------------


def events(raw: bytes) -> list[tuple[str, dict]]:
    body = Response(raw).body.decode()
    found = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_the_stream_says_hello_then_ticks_every_second(web):
    response, protocol, transport = request(web, with_token(web, "/dashboard/events"))
    assert response.header("content-type").startswith("text/event-stream")
    first = events(transport.value())
    assert [name for name, _ in first] == ["hello"]
    hello = first[0][1]
    assert hello["state"]["nodes"]["n1"]["state"] == "up"
    assert hello["state"]["nodes"]["n3"]["state"] == "never registered"
    web.reactor.advance(1.0)
    names = [name for name, _ in events(transport.value())]
    assert names.count("tick") >= 1


def test_a_finished_command_is_an_event(web):
    _, _, transport = request(web, with_token(web, "/dashboard/events"))
    web.c.stats.pipeline.command_done({"type": "COMMAND", "agent": "NOOP", "group": "g",
                                       "command": "ECHO", "origin": "alice", "target": "*"},
                                      7, ["n1"], {"n1": {"status": "applied"}}, 1_000_000.0)
    (entry,) = [data for name, data in events(transport.value()) if name == "command"]
    assert (entry["sender"], entry["command"], entry["counts"]) == ("alice", "ECHO",
                                                                    {"applied": 1})


def test_a_browser_that_goes_away_is_dropped(web):
    _, protocol, _ = request(web, with_token(web, "/dashboard/events"))
    stream = web.c.dashboard.events
    assert len(stream.clients) == 1
    protocol.connectionLost(Failure(ConnectionDone()))
    assert stream.clients == set()
    web.reactor.advance(1.0)  # a tick with nobody there writes nothing anywhere


def test_a_browser_that_stops_reading_is_skipped_then_told_what_it_missed(web):
    _, _, transport = request(web, with_token(web, "/dashboard/events"))
    (client,) = web.c.dashboard.events.clients
    client.pauseProducing()  # what Twisted does when the transport's buffer is full
    before = len(transport.value())
    web.reactor.advance(1.0)
    web.reactor.advance(1.0)
    assert len(transport.value()) == before and client.skipped >= 2
    client.resumeProducing()
    web.reactor.advance(1.0)
    names = [name for name, _ in events(transport.value())]
    assert "gap" in names and names[-1] == "tick"


def test_no_more_streams_than_the_limit(web):
    stream = web.c.dashboard.events
    stream.max_clients = 2
    for _ in range(2):
        assert request(web, with_token(web, "/dashboard/events"))[0].status == 200
    assert get(web, with_token(web, "/dashboard/events")).status == 503


def test_stopping_the_controller_ends_every_stream(web):
    _, _, transport = request(web, with_token(web, "/dashboard/events"))
    web.c.stopService()
    assert web.c.dashboard.events.clients == set()
    assert transport.value().endswith(b"0\r\n\r\n")  # the chunked body's end
