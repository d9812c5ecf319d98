"""Heartbeats: a silent link is noticed on both sides (unit tests on fakes;
the partition with real packets dropped is in tests/faults/)."""

from __future__ import annotations

from controller_lab import command
from backend.net.heartbeat import HEARTBEAT, HEARTBEAT_FRAME, Heartbeat
from seer.protocol.wire import FrameDecoder

#: Where the fake controller is (a daemon given none would look for it).
CONTROLLER = "127.0.0.1:7700"


def live(session, now):
    """Make a fake session an ordinary one: heard from and sent to at ``now``."""
    session.last_received = session.last_sent = now


class RecordingSession:
    """What Heartbeat.beat needs of a session, on a clock the test sets."""

    def __init__(self, now: float) -> None:
        self.now = self.last_received = self.last_sent = now
        self.raw: list[bytes] = []

    def send_raw(self, data: bytes) -> None:
        self.raw.append(data)
        self.last_sent = self.now


def test_an_idle_link_gets_a_heartbeat_and_a_silent_one_is_reported():
    beat = Heartbeat(interval=2.0, timeout=6.0)
    s = RecordingSession(100.0)
    s.now = 101.0
    assert beat.beat(s, s.now) is None and s.raw == []
    s.now = 102.0
    assert beat.beat(s, s.now) is None and s.raw == [HEARTBEAT_FRAME]
    s.now = 103.0
    assert beat.beat(s, s.now) is None and len(s.raw) == 1  # not idle again yet
    s.now = 106.5
    assert beat.beat(s, s.now) == 6.5
    (frame,) = FrameDecoder().feed(HEARTBEAT_FRAME)
    assert frame.type == HEARTBEAT


def test_a_silent_node_is_unreachable_within_the_timeout_and_commands_say_so_at_once(lab):
    n1, n2 = lab.register("n1"), lab.register("n2")
    now = lab.reactor.seconds()
    live(n1, now)
    live(n2, now)
    for _ in range(5):
        lab.reactor.advance(1.0)
        n1.last_received = lab.reactor.seconds()  # n1 keeps talking; n2 is silent
    assert [f.type for f in n2.sent if f.type == HEARTBEAT] != []  # it was sent heartbeats
    assert lab.c.nodes.get("n2").up
    lab.reactor.advance(2.0)
    assert n2.transport.aborted and not n1.transport.aborted
    lab.c.sessionClosed(n2, None)  # what aborting the TLS connection brings
    record = lab.c.nodes.get("n2")
    assert record.state == "unreachable" and record.unreachable_since == now
    alice = lab.client()
    lab.request(alice, command(target="n1,n2", timeout=30))
    lab.c.frameReceived(n1, _applied(1))
    (result,) = alice.of_type("RESULT")  # no 30 s wait: n2's outcome came at once
    assert result.get("outcomes")["n2"]["status"] == "unconfirmed"
    assert "unreachable since" in result.get("outcomes")["n2"]["error"]
    lab.register("n2")
    assert lab.c.nodes.get("n2").state == "up" and lab.c.nodes.get("n2").unreachable_since is None


def _applied(serial):
    from seer.protocol.wire import Frame

    return Frame({"type": "REPORT", "ack": serial, "outcomes": [[serial, "applied", None, None]]})


def test_the_welcome_tells_the_daemon_the_heartbeat(lab):
    n1 = lab.register("n1")
    assert n1.of_type("WELCOME")[0].get("heartbeat") == {"interval": 2.0, "timeout": 6.0}


def test_a_daemon_drops_a_silent_controller_and_a_ping_brings_it_back_at_once(
        certs_dir, tmp_path):
    from twisted.python.failure import Failure
    from twisted.internet.error import ConnectionLost

    from backend.node.daemon import NodeDaemon
    from backend.runtime.agentloader import AgentRegistry
    from seer.protocol.datagrams import KIND_PING, SigningKeys, encode_datagram
    from seer.protocol.wire import Frame
    from seer.testing import FakeReactor, FakeSession

    reactor = FakeReactor()
    reactor.advance(1000)
    keys = SigningKeys.generate()
    d = NodeDaemon("n1", reactor=reactor, controller=CONTROLLER,
                   certs=certs_dir, registry=AgentRegistry(),
                   workdir=tmp_path / "n1", jitter=lambda: 0.0)
    d.startService()
    session = FakeSession("seer-controller", "controller")
    d.link.sessionOpened(session)
    d.link.frameReceived(session, Frame({
        "type": "WELCOME", "epoch": 5, "serial": 0, "keys": keys.verifying().to_json(),
        "heartbeat": {"interval": 1.0, "timeout": 3.0}}))
    live(session, reactor.seconds())
    reactor.advance(2.0)
    assert not session.transport.aborted
    reactor.advance(2.0)  # 4 s of silence > the WELCOME's 3 s
    assert session.transport.aborted
    d.link.sessionClosed(session, Failure(ConnectionLost()))
    attempts = len(reactor.sslClients)
    d.datagramReceived(encode_datagram(keys, KIND_PING, 5, 0, body={"t": 0}))
    reactor.advance(0)
    assert len(reactor.sslClients) == attempts + 1  # at once, not after the backoff
    d.datagramReceived(encode_datagram(keys, KIND_PING, 5, 0, body={"t": 0}))
    reactor.advance(0)
    assert len(reactor.sslClients) == attempts + 1  # at most once a second
    assert d.counters["controller_silent"] == 1
    d.stopService()


def test_a_ping_goes_out_every_few_seconds_even_while_commands_stream(lab):
    from seer.protocol.datagrams import KIND_PING

    lab.register("n1")
    alice = lab.client()
    lab.request(alice, command(command="START"))
    lab.sender.take()
    kinds = []
    for i in range(250):  # a command every 40 ms for 10 s: never quiet enough for a PING
        lab.request(alice, command(id=100 + i, command="STOP"))
        lab.reactor.advance(0.04)
        kinds += [d.kind for d in lab.datagrams()]
    assert kinds.count(KIND_PING) >= 2  # every 5 ping intervals all the same
