"""The node daemon's pipeline, fed datagrams and frames on a fake reactor."""

from __future__ import annotations

import subprocess
import sys

import pytest
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from backend.agent import Agent, Var
from backend.runtime.agentloader import AgentRegistry
from backend.node.daemon import NodeDaemon
from seer.testing import FakeReactor, FakeSession
from seer.protocol.datagrams import KIND_MESSAGES, KIND_PING, SigningKeys, encode_datagram
from seer.protocol.wire import Frame, encode_frame

#: Where the fake controller is (a daemon given none would look for it).
CONTROLLER = "127.0.0.1:7700"

EPOCH = 77


class Tally(Agent):
    AGENT_TYPE = "TALLY"
    VARIABLES = [Var("label", "string", "", "")]
    seen: list = []

    def handleHIT(self, args):
        Tally.seen.append((self.nodename, args.get("i"), self.getNodeVar("label")))

    def handleSTART(self):
        Tally.seen.append((self.nodename, "START", None))


def hit(i, target="*", **extra):
    return dict({"type": "COMMAND", "agent": "TALLY", "group": "g", "command": "HIT",
                 "args": {"i": i}, "target": target}, **extra)


class Node:
    def __init__(self, reactor, certs_dir, tmp_path, **options):
        Tally.seen.clear()
        registry = AgentRegistry()
        registry.add(Tally, "test")
        self.reactor = reactor
        self.keys = SigningKeys.generate()
        self.d = NodeDaemon("n1", reactor=reactor, controller=CONTROLLER,
                            certs=certs_dir, registry=registry,
                            workdir=tmp_path / "n1", **options)
        self.d.startService()
        self.session = FakeSession("seer-controller", "controller")

    def connect(self, serial=0, **welcome):
        self.d.link.sessionOpened(self.session)
        header = dict({"type": "WELCOME", "epoch": EPOCH, "serial": serial,
                       "keys": self.keys.verifying().to_json(), "ping_interval": 1.0}, **welcome)
        self.d.link.frameReceived(self.session, Frame(header))
        self.reactor.advance(0)
        return self.session.take()

    def datagram(self, serial, *messages, keys=None, epoch=EPOCH):
        return encode_datagram(keys or self.keys, KIND_MESSAGES, epoch, serial, list(messages))

    def send(self, data):
        self.d.datagramReceived(data)
        self.reactor.advance(0)

    def reports(self):
        return [f for f in self.session.take() if f.type == "REPORT"]

    def outcomes(self):
        return [o for r in self.reports() for o in r.get("outcomes") or []]


@pytest.fixture
def node(certs_dir, tmp_path):
    reactor = FakeReactor()
    reactor.advance(1000)
    n = Node(reactor, certs_dir, tmp_path)
    yield n
    n.d.stopService()


def test_joins_the_group_on_the_configured_interface(node):
    (port,) = node.reactor.multicast
    assert port.groups == [("239.255.77.1", "127.0.0.1")]
    assert port.interface == "239.255.77.1"


def test_registers_with_info(node):
    node.d.link.sessionOpened(node.session)
    (info,) = node.session.of_type("INFO")
    assert info.get("name") == "n1" and info.get("epoch") == 0
    assert "TALLY" in info.get("agents")


def test_in_order_delivery_with_outcomes_and_cumulative_ack(node):
    node.connect()
    node.send(node.datagram(1, hit(1), hit(2)))
    assert Tally.seen == [("n1", 1, ""), ("n1", 2, "")]
    (report,) = node.reports()
    assert report.get("ack") == 2
    assert report.get("outcomes") == [[1, "applied", None, None, 1000.0],
                                      [2, "applied", None, None, 1000.0]]  # when each ran


def test_messages_for_other_nodes_advance_the_ack_without_dispatch(node):
    node.connect()
    node.send(node.datagram(1, hit(1, target=["n2"])))
    assert Tally.seen == []
    node.reactor.advance(0.2)
    (report,) = node.reports()
    assert report.get("ack") == 1 and "outcomes" not in report.header


def test_forged_datagram_is_never_dispatched(node):
    node.connect()
    node.send(node.datagram(1, hit(1), keys=SigningKeys.generate()))
    attacker = SigningKeys(node.keys.hmac_key, SigningKeys.generate().private_key)
    node.send(node.datagram(1, hit(1), keys=attacker))
    assert Tally.seen == []
    assert node.d.counters["dropped_mac"] == 1
    assert node.d.counters["dropped_signature"] == 1


def test_replayed_datagram_is_never_dispatched_twice(node):
    node.connect()
    original = node.datagram(1, hit(1))
    node.send(original)
    node.send(original)
    node.send(node.datagram(2, hit(2)))
    node.send(original)
    assert Tally.seen == [("n1", 1, ""), ("n1", 2, "")]
    assert node.d.serializer.duplicates == 2


def test_datagram_of_another_epoch_is_dropped(node):
    node.connect()
    node.send(node.datagram(1, hit(1), epoch=EPOCH + 1))
    assert Tally.seen == [] and node.d.counters["dropped_epoch"] == 1


def test_garbage_is_dropped_and_counted(node):
    node.connect()
    for junk in (b"", b"SEER", b"x" * 500, b"SEER\x01\x01" + b"\x00" * 200):
        node.send(junk)
    assert Tally.seen == []
    assert sum(v for k, v in node.d.counters.items() if k.startswith("dropped_")) == 4


def test_gap_is_asked_for_and_filled_by_a_repair(node):
    node.connect()
    first, second, third = (node.datagram(i, hit(i)) for i in (1, 2, 3))
    node.send(first)
    node.send(third)
    assert Tally.seen == [("n1", 1, "")]
    (nack,) = node.session.of_type("NACK")
    assert nack.get("ranges") == [[2, 2]]
    node.d.link.frameReceived(node.session, Frame({"type": "REPAIR"}, second))
    assert [i for _, i, _ in Tally.seen] == [1, 2, 3]
    assert node.d.counters["repairs_received"] == 1


def test_repair_is_asked_again_if_it_does_not_come(node):
    node.connect()
    node.send(node.datagram(2, hit(2)))
    node.session.take()
    node.reactor.advance(0.25)
    assert [f.get("ranges") for f in node.session.of_type("NACK")] == [[[1, 1]]]


def test_ping_reveals_a_lost_last_message(node):
    node.connect()
    node.send(encode_datagram(node.keys, KIND_PING, EPOCH, 3))
    assert node.session.of_type("NACK")[0].get("ranges") == [[1, 3]]


def test_datagrams_before_welcome_are_kept_and_used(node):
    node.send(node.datagram(1, hit(1)))
    assert Tally.seen == []
    node.connect(serial=0)
    assert Tally.seen == [("n1", 1, "")]


def test_scheduled_message_waits_for_its_time(node):
    node.connect()
    node.send(node.datagram(1, hit(1, time=1030.0), hit(2)))
    assert [i for _, i, _ in Tally.seen] == [2]
    node.reactor.advance(30)
    assert [i for _, i, _ in Tally.seen] == [2, 1]


def test_welcome_snapshot_restores_groups_and_is_reported(node):
    frames = node.connect(serial=9, reset=True, snapshot={
        "groups": [{"agent": "TALLY", "group": "g", "vars": {"label": "restored"}, "run": "running"}],
        "scheduled": [[8, hit(99, target=["n1"], time=1010.0)]]})
    assert Tally.seen == [("n1", "START", None)]
    report = [f for f in frames if f.type == "REPORT"][-1]
    assert report.get("snapshot") == 9 and report.get("ack") == 9
    node.send(node.datagram(10, hit(10)))
    assert Tally.seen[-1] == ("n1", 10, "restored")
    node.reactor.advance(10)
    assert Tally.seen[-1] == ("n1", 99, "restored")


def test_snapshot_for_a_node_too_far_behind_skips_ahead(node):
    node.connect()
    node.send(node.datagram(1, hit(1)))
    node.send(node.datagram(5, hit(5)))
    node.d.link.frameReceived(node.session, Frame({"type": "SNAPSHOT", "epoch": EPOCH, "serial": 4,
                                              "snapshot": {"groups": [], "scheduled": []}}))
    assert [i for _, i, _ in Tally.seen] == [1, 5]
    assert node.d.serializer.delivered_upto == 5


def test_stale_snapshot_is_ignored(node):
    node.connect()
    node.send(node.datagram(1, hit(1), hit(2)))
    node.d.link.frameReceived(node.session, Frame({"type": "SNAPSHOT", "epoch": EPOCH, "serial": 1,
                                              "snapshot": {"groups": [{"agent": "TALLY", "group": "g",
                                                                       "vars": {"label": "old"}}]}}))
    assert node.d.counters["stale_snapshots"] == 1
    assert node.d.dispatcher.instances[("TALLY", "g")].getNodeVar("label") == ""


def test_outcomes_wait_while_disconnected_and_go_after_reconnecting(node):
    node.connect()
    node.d.link.sessionClosed(node.session, Failure(ConnectionDone()))
    node.send(node.datagram(1, hit(1)))
    assert node.d.session is None
    node.session = FakeSession("seer-controller", "controller")
    frames = node.connect(serial=1)
    assert [o[0] for f in frames if f.type == "REPORT" for o in f.get("outcomes") or []] == [1]


def test_receive_path_drop_injects_loss(certs_dir, tmp_path):
    reactor = FakeReactor()
    n = Node(reactor, certs_dir, tmp_path, rx_drop=1.0)
    n.connect()
    n.send(n.datagram(1, hit(1)))
    assert Tally.seen == [] and n.d.counters["rx_dropped"] == 1
    n.d.stopService()


def test_a_peer_that_is_not_the_controller_is_refused(node):
    impostor = FakeSession("n2", "node")
    node.d.link.sessionOpened(impostor)
    assert impostor.closed and impostor.of_type("INFO") == []


def test_stop_leaves_no_timer(node):
    node.connect()
    node.send(node.datagram(2, hit(2, time=5000.0)))
    node.d.stopService()
    assert [c for c in node.reactor.getDelayedCalls() if c.active()] == []


def test_reconnects_with_exponential_backoff(certs_dir, tmp_path):
    from twisted.internet.error import ConnectionRefusedError

    reactor = FakeReactor()
    registry = AgentRegistry()
    d = NodeDaemon("n1", reactor=reactor, controller=CONTROLLER,
                   certs=certs_dir, registry=registry,
                   workdir=tmp_path, retry_initial=0.5, retry_max=4.0, jitter=lambda: 0.0)
    d.startService()
    attempts = []

    def fail_latest():
        host, port, factory, *_ = reactor.sslClients[-1]
        attempts.append(reactor.seconds())
        factory.clientConnectionFailed(reactor.connectors[-1], Failure(ConnectionRefusedError()))

    fail_latest()
    for _ in range(5):
        before = len(reactor.sslClients)
        while len(reactor.sslClients) == before:
            reactor.advance(0.25)
        fail_latest()
    gaps = [round(b - a, 2) for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert reactor.sslClients[0][:2] == ("127.0.0.1", 7700)
    d.stopService()


def test_a_snapshot_does_not_rerun_a_scheduled_message_already_delivered(node):
    node.connect()
    node.send(node.datagram(1, dict(hit(1), time=1010.0)))
    node.reactor.advance(10)
    assert [i for _, i, _ in Tally.seen] == [1]
    node.d.link.frameReceived(node.session, Frame({"type": "SNAPSHOT", "epoch": EPOCH, "serial": 2,
        "snapshot": {"groups": [], "scheduled": [[1, hit(1, target=["n1"], time=1010.0)]]}}))
    node.reactor.advance(1)
    assert [i for _, i, _ in Tally.seen] == [1]


def test_a_controller_that_never_welcomes_is_dropped_and_retried_with_backoff(certs_dir, tmp_path):
    reactor = FakeReactor()
    d = NodeDaemon("n1", reactor=reactor, controller=CONTROLLER,
                   certs=certs_dir, registry=AgentRegistry(),
                   workdir=tmp_path, retry_initial=0.5, retry_max=8.0, jitter=lambda: 0.0)
    d.startService()
    delays = []
    for _ in range(3):
        session = FakeSession("seer-controller", "controller")
        d.link.sessionOpened(session)
        reactor.advance(20)  # WELCOME_TIMEOUT: no WELCOME came
        assert session.transport.aborted
        d.link.sessionClosed(session, Failure(ConnectionDone()))
        delays.append(d.link.retry_delay(0))  # ClientService saw the TCP connect succeed
    assert delays == [1.0, 2.0, 4.0]  # backs off although every TCP connect worked
    d.stopService()


def test_a_daemon_process_does_not_import_the_client_testbed_or_netaddr():
    # Footprint (docs/PERFORMANCE.md): these are for experimenters and agents
    # that parse addresses; an idle daemon should not carry them.
    probe = ("import sys, seer.cli, backend.node.daemon, backend.runtime.agentloader as a; "
             "seer.cli.build_parser(); a.default_registry(); "
             "print(' '.join(m for m in ('netaddr', 'seer.client', 'seer.testbed.build', "
             "'seer.testbed.topology') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- one bad message never harms another ------------------------------------------------


class Faulty(Agent):
    """Goes wrong in the ways issue 12 found: in processArgs, validate, handlers, results."""

    AGENT_TYPE = "FAULTY"
    VARIABLES = [Var("mode", "string", "", "what goes wrong")]

    def processArgs(self, args):
        if args.get("mode") == "processArgs":
            raise TypeError("processArgs broke")
        super().processArgs(args)

    def validate(self, new):
        if (new.get("mode") or {}).get("*") == "validate":
            raise RuntimeError("validate broke")

    def handleEXIT(self):
        sys.exit(2)

    def handleINTERRUPT(self):
        raise KeyboardInterrupt

    def handleRESULT(self, args):
        return {"x": object()} if args.get("kind") == "object" else {"x": float("nan")}

    def handleOK(self):
        return {"ok": self.getNodeVar("mode")}


class EncodingSession(FakeSession):
    """Encodes each frame as the real TLS session does (a frame that cannot be encoded fails)."""

    def send(self, header, blob=b""):
        self.send_raw(encode_frame(header, blob))


def faulty(group="bad", **message):
    return dict({"agent": "FAULTY", "group": group, "target": "*"}, **message)


BAD_MESSAGES = {
    "processArgs": (faulty(type="SET", vars={"mode": "processArgs"}),
                    "TypeError: processArgs broke"),
    "validate": (faulty(type="SET", vars={"mode": "validate"}), "RuntimeError: validate broke"),
    "sys.exit": (faulty(type="COMMAND", command="EXIT", args={}), "SystemExit: 2"),
    "KeyboardInterrupt": (faulty(type="COMMAND", command="INTERRUPT", args={}),
                          "KeyboardInterrupt"),
    "object result": (faulty(type="COMMAND", command="RESULT", args={"kind": "object"}),
                      "result['x'] is an object"),
    "nan result": (faulty(type="COMMAND", command="RESULT", args={"kind": "nan"}),
                   "result['x'] is nan"),
}


@pytest.fixture
def faulty_node(certs_dir, tmp_path):
    reactor = FakeReactor()
    reactor.advance(1000)
    n = Node(reactor, certs_dir, tmp_path)
    n.d.registry.add(Faulty, "test")
    n.session = EncodingSession("seer-controller", "controller")
    yield n
    n.d.stopService()


@pytest.mark.parametrize("what", sorted(BAD_MESSAGES))
def test_a_bad_message_fails_alone_next_to_a_healthy_one_in_the_same_datagram_and_report(
        faulty_node, what):
    node = faulty_node
    node.connect()
    bad, error = BAD_MESSAGES[what]
    node.send(node.datagram(1, bad, hit(2), faulty(type="COMMAND", command="OK", args={})))
    assert Tally.seen == [("n1", 2, "")]  # the healthy group's message ran
    (report,) = node.reports()  # ... and every outcome came in one REPORT
    outcomes = {o[0]: o[1:3] for o in report.get("outcomes")}
    assert outcomes[1][0] == "failed" and error in outcomes[1][1], outcomes[1]
    assert outcomes[2] == ["applied", None]
    assert outcomes[3] == ["applied", None]  # the bad message's group keeps working
    assert report.get("ack") == 3


def test_a_bad_message_does_not_stop_its_group_on_later_datagrams(faulty_node):
    node = faulty_node
    node.connect()
    node.send(node.datagram(1, BAD_MESSAGES["validate"][0]))
    node.send(node.datagram(2, faulty(type="SET", vars={"mode": "fine"}),
                            faulty(type="COMMAND", command="OK", args={})))
    outcomes = [o for o in node.outcomes()]
    assert [o[:2] for o in outcomes] == [[1, "failed"], [2, "applied"], [3, "applied"]]
    assert outcomes[2][3] == {"ok": "fine"}


@pytest.fixture
def isolating_node(certs_dir, tmp_path):
    from pathlib import Path

    from seer.testing import FakeProcessReactor, FakeWorkers

    reactor = FakeProcessReactor()
    reactor.advance(1000)
    workers = FakeWorkers(reactor)
    n = Node(reactor, certs_dir, tmp_path)
    loaded = n.d.registry.load_file(Path(__file__).parent / "faults" / "agents" / "faulty.py")
    assert loaded == ["FAULTY", "FAULTY_INLINE"]
    n.session = EncodingSession("seer-controller", "controller")
    n.workers = workers
    yield n
    n.d.stopService()
    reactor.advance(10)


def test_the_daemon_runs_a_third_party_agent_in_a_worker_and_a_bad_message_there_fails_alone(
        isolating_node):
    node = isolating_node
    node.connect()
    bad = {"type": "SET", "agent": "FAULTY", "group": "bad", "vars": {"mode": "processArgs"},
           "target": "*"}
    nan = {"type": "COMMAND", "agent": "FAULTY", "group": "nan", "command": "RESULT",
           "args": {"kind": "nan"}, "target": "*"}
    ok = {"type": "COMMAND", "agent": "FAULTY", "group": "bad", "command": "OK", "args": {},
          "target": "*"}
    node.send(node.datagram(1, bad, nan, hit(3), ok))
    assert Tally.seen == [("n1", 3, "")]  # the inline group did not wait for the workers
    node.reactor.advance(0)  # the workers start and answer
    outcomes = {o[0]: o[1:4] for o in node.outcomes()}
    assert outcomes[1][0] == "failed" and outcomes[1][1].startswith(
        "RuntimeError: processArgs broke on purpose [at processArgs (faulty.py:")
    assert outcomes[2][0] == "failed" and "result['x'] is nan" in outcomes[2][1]
    assert outcomes[3] == ["applied", None, None]
    assert outcomes[4][0] == "applied" and outcomes[4][2]["label"] == ""
    assert [w.process.args[-1] for w in node.workers.started] == ["n1/FAULTY/bad",
                                                                  "n1/FAULTY/nan"]


def test_the_report_leaves_in_the_same_reactor_turn_as_the_datagram(node):
    node.connect()
    node.d.datagramReceived(node.datagram(1, hit(1)))  # no reactor turn after it
    (report,) = node.reports()
    assert report.get("ack") == 1 and [o[:2] for o in report.get("outcomes")] == [[1, "applied"]]
