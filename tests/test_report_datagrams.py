"""Report datagrams: outcomes by UDP under each node's own key, confirmed,
and sent again by TLS when a datagram is lost (unit tests on fakes)."""

from __future__ import annotations

from collections import Counter

import pytest

from controller_lab import command
from backend.node.reporter import GIVE_UP_AFTER, RESEND_AFTER, Reporter
from seer.protocol.mac import KeyedMac
from seer.protocol.reports import REPORT_MAX, decode_report, encode_report, report_session
from seer.protocol.wire import WireError
from seer.testing import FakeReactor

KEY = KeyedMac(bytes(range(32)))


def test_a_report_datagram_round_trips_and_only_its_key_opens_it():
    data = encode_report(KEY, 7, 3, {"ack": 5, "outcomes": [[5, "applied", None, None, 1.0]]})
    assert report_session(data) == (7, 3)
    assert decode_report(KEY, data)["ack"] == 5
    with pytest.raises(WireError) as e:
        decode_report(KeyedMac(bytes(32)), data)
    assert e.value.reason == "mac"
    assert encode_report(KEY, 7, 4, {"ack": 1, "outcomes": [["x" * REPORT_MAX]]}) is None


def welcome_report(session):
    (welcome,) = session.of_type("WELCOME")
    report = welcome.get("report")
    return report["session"], KeyedMac(bytes.fromhex(report["key"])), report["port"]


def test_the_controller_takes_outcomes_by_datagram_and_confirms_them(lab):
    n1 = lab.register("n1")
    session_id, key, port = welcome_report(n1)
    assert lab.reactor.udp[0].getHost().port == port
    alice = lab.client()
    lab.request(alice, command(target="n1"))
    receiver = lab.c.reports
    outcome = {"ack": 1, "outcomes": [[1, "applied", None, {"x": 1}, 1.0]]}
    receiver.datagramReceived(encode_report(key, session_id, 1, outcome), ("127.0.0.1", 1))
    (result,) = alice.of_type("RESULT")
    assert result.get("outcomes") == {"n1": {"status": "applied", "result": {"x": 1},
                                             "at": 1.0}}
    assert lab.c.nodes.get("n1").serial == 1
    lab.reactor.advance(0.3)
    assert n1.of_type("REPORTED")[-1].get("seqs") == [1]
    receiver.datagramReceived(encode_report(key, session_id, 1, outcome), ("127.0.0.1", 1))
    assert lab.c.counters["dropped_reports_replay"] == 1


def test_a_node_cannot_report_for_another(lab):
    n1, n2 = lab.register("n1"), lab.register("n2")
    session_1, _, _ = welcome_report(n1)
    _, key_2, _ = welcome_report(n2)
    lab.request(lab.client(), command(target="n1"))
    forged = encode_report(key_2, session_1, 1, {"ack": 1,
                                                  "outcomes": [[1, "failed", "forged", None]]})
    lab.c.reports.datagramReceived(forged, ("127.0.0.1", 1))
    assert lab.c.counters["dropped_reports_mac"] == 1
    assert lab.c.nodes.get("n1").serial == 0


def test_a_closed_session_refuses_its_datagrams(lab):
    n1 = lab.register("n1")
    session_id, key, _ = welcome_report(n1)
    lab.c.sessionClosed(n1, None)
    lab.c.reports.datagramReceived(encode_report(key, session_id, 1, {"ack": 0}),
                                   ("127.0.0.1", 1))
    assert lab.c.counters["dropped_reports_session"] == 1


class Link:
    def __init__(self):
        self.session = object()
        self.sent: list[dict] = []

    def send(self, header):
        self.sent.append(header)
        return True


class Channel:
    def __init__(self):
        self.bodies: list[dict] = []

    def send(self, body):
        self.bodies.append(body)
        return len(self.bodies)


def reporter():
    clock, link, channel = FakeReactor(), Link(), Channel()
    r = Reporter(clock, link, lambda: 1, lambda: {}, Counter())
    r.use_channel(channel)
    return r, clock, link, channel


def test_outcomes_go_by_datagram_and_a_lost_one_goes_again_by_tls():
    r, clock, link, channel = reporter()
    r.outcome(1, "applied", None, None, 1.0)
    clock.advance(0)
    assert [b["outcomes"][0][0] for b in channel.bodies] == [1] and link.sent == []
    r.outcome(2, "applied", None, None, 1.0)
    clock.advance(0)
    r.confirmed([1])  # datagram 2 never arrives
    clock.advance(RESEND_AFTER)
    (tls,) = link.sent
    assert [o[0] for o in tls["outcomes"]] == [2]


def test_a_channel_never_confirmed_is_given_up_for_tls():
    r, clock, link, channel = reporter()
    for serial in range(1, GIVE_UP_AFTER + 2):
        r.outcome(serial, "applied", None, None, 1.0)
        clock.advance(0)
        clock.advance(RESEND_AFTER)
    assert r.channel is None
    sent = len(channel.bodies)
    r.outcome(99, "applied", None, None, 1.0)
    clock.advance(0)
    assert len(channel.bodies) == sent and link.sent[-1]["outcomes"][0][0] == 99


def test_events_and_ordered_outcomes_go_by_tls():
    r, clock, link, channel = reporter()
    r.event("A", "g", "done", {})
    r.outcome(1, "applied", None, None, 1.0)
    clock.advance(0)
    assert channel.bodies == [] and link.sent[-1]["events"]
    r.keep_order(2)  # a GET: its FILE frames went by TLS before it
    r.outcome(2, "applied", None, None, 1.0)
    clock.advance(0)
    assert channel.bodies == [] and link.sent[-1]["outcomes"][0][0] == 2


def test_the_controllers_report_port_holds_a_thousand_nodes_reports_at_once():
    # Each node's report of one command arrives at once: in the default
    # buffer (208 kB here) about 8 in 1,000 were dropped at N=1,000.
    import socket

    from backend.controller.reports import ReportReceiver
    from backend.net.multicast import RECEIVE_BUFFER

    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.socket = sock

    receiver = ReportReceiver(controller=None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        receiver.transport = Transport(sock)
        receiver.startProtocol()
        # Linux reports twice what was set (its bookkeeping overhead).
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= RECEIVE_BUFFER
