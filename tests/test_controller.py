"""The controller as a router, driven with fake sessions on a fake reactor."""

from __future__ import annotations

import pytest

from controller_lab import CATALOGUE, command, make_controller
from seer.protocol.datagrams import KIND_MESSAGES, KIND_PING, VerifyingKeys, decode_datagram
from seer.protocol.wire import Frame
from seer.testing import FakeReactor, FakeSession


def test_multicast_is_ttl_1_on_the_configured_interface(lab):
    assert lab.sender.ttl == 1
    assert lab.sender.outgoing_interface == "127.0.0.1"


def test_one_datagram_per_command_whatever_the_number_of_nodes(lab):
    for i in range(1, 31):
        lab.register(f"n{i}")
    alice = lab.client()
    lab.request(alice, command())
    (datagram,) = lab.datagrams()
    assert datagram.kind == KIND_MESSAGES and datagram.serial == 1
    assert datagram.messages[0]["target"] == "*"
    assert datagram.messages[0]["origin"] == "alice"
    accepted = alice.of_type("ACCEPTED")[0]
    assert accepted.get("serial") == 1 and len(accepted.get("nodes")) == 30
    assert accepted.get("down") == []


def test_commands_in_one_turn_share_a_datagram(lab):
    lab.register("n1")
    alice = lab.client()
    for i in range(5):
        lab.c.frameReceived(alice, Frame(command(id=i)))
    lab.reactor.advance(0)
    (datagram,) = lab.datagrams()
    assert [s for s, _ in datagram.numbered()] == [1, 2, 3, 4, 5]
    assert [f.get("serial") for f in alice.of_type("ACCEPTED")] == [1, 2, 3, 4, 5]


def test_outcomes_come_back_as_one_result(lab):
    n1, n2 = lab.register("n1"), lab.register("n2")
    alice = lab.client()
    lab.request(alice, command(target="n1,n2"))
    lab.c.frameReceived(n1, Frame({"type": "REPORT", "ack": 1, "outcomes": [[1, "applied", None, None]]}))
    assert alice.of_type("RESULT") == []
    lab.c.frameReceived(n2, Frame({"type": "REPORT", "ack": 1,
                                   "outcomes": [[1, "failed", "ValueError: x", None]]}))
    (result,) = alice.of_type("RESULT")
    assert result.get("outcomes") == {"n1": {"status": "applied"},
                                      "n2": {"status": "failed", "error": "ValueError: x"}}
    assert lab.c.nodes.get("n1").serial == 1


def test_silent_and_down_nodes_are_named_at_the_timeout(lab):
    lab.register("n1")
    n2 = lab.register("n2")
    alice = lab.client()
    lab.request(alice, command(target="n1,n2,n9", timeout=5))
    lab.c.sessionClosed(n2, None)
    lab.reactor.advance(5)
    outcomes = alice.of_type("RESULT")[0].get("outcomes")
    assert outcomes["n1"] == {"status": "unconfirmed", "error": "no outcome within the timeout"}
    assert "node is down" in outcomes["n2"]["error"]
    assert outcomes["n9"]["error"] == "node never registered"
    assert not lab.c.nodes.get("n2").up


@pytest.mark.parametrize("header, message", [
    (command(target="zz*"), "target term 'zz*' matches no node"),
    (command(agent="HTTP"), "no targeted node has an agent of type 'HTTP'"),
    (command(command="LAUNCH"), "NOOP has no command 'LAUNCH'"),
    ({"type": "SET", "id": 1, "agent": "NOOP", "group": "g", "vars": {"count": "many"}},
     "count: expected an integer"),
    ({"type": "SET", "id": 1, "agent": "NOOP", "group": "g", "vars": {}}, "at least one"),
    (command(group="bad group"), "group name must be"),
    (command(timeout=-1), "timeout must be between"),
    (command(time=1.0), "in the past"),
    (command(args=[1, 2]), "args must be an object"),
])
def test_bad_requests_get_an_error_and_nothing_is_sent(lab, header, message):
    lab.register("n1")
    alice = lab.client()
    lab.request(alice, header)
    (error,) = alice.of_type("ERROR")
    assert message in error.get("error")
    assert error.get("id") == 1
    assert lab.sender.take() == [] and lab.c.comm.serial == 0


def test_nodes_may_not_command_each_other(lab):
    n1 = lab.register("n1")
    lab.c.frameReceived(n1, Frame(command()))
    assert "a node may not send COMMAND" in n1.of_type("ERROR")[0].get("error")
    assert lab.c.comm.serial == 0


def test_a_node_cannot_register_under_another_nodes_name(lab):
    s = FakeSession("n1", "node")
    lab.c.sessionOpened(s)
    lab.c.frameReceived(s, Frame({"type": "INFO", "name": "n2"}))
    (refused,) = s.of_type("REFUSED")
    assert "certificate is for node 'n1', not 'n2'" in refused.get("error")
    assert refused.get("retry") is False  # trying again cannot help
    assert s.closed and not lab.c.nodes.get("n2").up


def test_node_frames_before_info_are_refused(lab):
    s = FakeSession("n1", "node")
    lab.c.sessionOpened(s)
    lab.c.frameReceived(s, Frame({"type": "REPORT", "ack": 5}))
    assert "send INFO before REPORT" in s.of_type("ERROR")[0].get("error")


def test_a_reconnecting_node_replaces_its_old_session(lab):
    old = lab.register("n1")
    new = lab.register("n1")
    assert old.closed and not new.closed
    lab.c.sessionClosed(old, None)
    assert lab.c.nodes.get("n1").up


def test_nack_is_answered_with_the_original_datagrams(lab):
    n1 = lab.register("n1")
    alice = lab.client()
    lab.request(alice, command(id=1))
    lab.request(alice, command(id=2))
    sent = lab.sender.take()
    lab.c.frameReceived(n1, Frame({"type": "NACK", "ranges": [[1, 2]]}))
    repairs = n1.of_type("REPAIR")
    assert [r.blob for r in repairs] == sent


def test_retired_serials_are_answered_with_a_snapshot(lab):
    n1 = lab.register("n1")
    alice = lab.client()
    lab.request(alice, {"type": "SET", "id": 1, "agent": "NOOP", "group": "g", "vars": {"note": "x"}})
    lab.request(alice, command(id=2))
    lab.reactor.advance(121)
    lab.c.comm.retireSerials()
    assert len(lab.c.comm.window) == 0
    lab.c.frameReceived(n1, Frame({"type": "NACK", "ranges": [[1, 2]]}))
    (snapshot,) = n1.of_type("SNAPSHOT")
    assert snapshot.get("serial") == 2
    assert snapshot.get("snapshot")["groups"] == [
        {"agent": "NOOP", "group": "g", "vars": {"note": "x"}, "run": "running", "start": 2}]


def test_retirement_runs_by_itself(lab):
    lab.register("n1")
    lab.request(lab.client(), command())
    assert len(lab.c.comm.window) == 1
    lab.reactor.pump([10.0] * 14)
    assert len(lab.c.comm.window) == 0


def test_garbage_nack_ranges_are_refused(lab):
    n1 = lab.register("n1")
    lab.c.frameReceived(n1, Frame({"type": "NACK", "ranges": [[5, 2]]}))
    assert "bad NACK range" in n1.of_type("ERROR")[0].get("error")


def test_idle_experiment_is_pinged_with_the_current_serial(lab):
    lab.register("n1")
    lab.request(lab.client(), command())
    lab.sender.take()
    lab.reactor.advance(0.05)  # the tail ping after a burst
    lab.reactor.advance(1.0)   # then the periodic one
    pings = lab.datagrams()
    assert pings and all(p.kind == KIND_PING and p.serial == 1 for p in pings)


def test_welcome_gives_a_new_daemon_a_snapshot_and_a_known_one_repairs(lab):
    lab.register("n1")
    alice = lab.client()
    lab.request(alice, command())
    fresh = lab.register("n2")
    welcome = fresh.of_type("WELCOME")[0]
    assert welcome.get("reset") and welcome.get("snapshot")["groups"][0]["run"] == "running"
    epoch = welcome.get("epoch")
    behind = lab.register("n3", epoch=epoch, serial=0)
    welcome = behind.of_type("WELCOME")[0]
    assert "snapshot" not in welcome.header and not welcome.get("reset")
    assert welcome.get("serial") == 1


def test_wait_replies_when_nodes_register_or_names_the_missing(lab):
    alice = lab.client()
    lab.request(alice, {"type": "WAIT", "id": 1, "nodes": ["n1", "n2"], "timeout": 10})
    lab.register("n1")
    assert alice.of_type("REPLY") == []
    lab.register("n2")
    assert alice.of_type("REPLY")[0].get("ok")
    lab.request(alice, {"type": "WAIT", "id": 2, "nodes": ["n1", "n9"], "timeout": 10})
    lab.reactor.advance(10)
    reply = alice.of_type("REPLY")[1]
    assert not reply.get("ok") and reply.get("never_registered") == ["n9"]


def test_wait_for_a_node_outside_the_node_file_is_refused_at_once_with_the_nearest(lab):
    alice = lab.client()
    lab.request(alice, {"type": "WAIT", "id": 3, "nodes": ["n1", "nn2"], "timeout": 10})
    error = alice.of_type("ERROR")[0].get("error")
    assert "no such node: 'nn2' (nearest: 'n2')" in error and "n1, n2, n3, n9" in error
    assert alice.of_type("REPLY") == []


def test_sinks_receive_agent_reports(lab):
    n1 = lab.register("n1")
    watcher = lab.client("bob")
    lab.request(watcher, {"type": "SUBSCRIBE", "id": 1})
    lab.c.frameReceived(n1, Frame({"type": "REPORT", "events": [
        {"agent": "NOOP", "group": "g", "event": "started", "data": {}}]}))
    (report,) = watcher.of_type("REPORT")
    assert report.get("node") == "n1" and report.get("event") == "started"


def test_restart_from_checkpoint_continues_serials(lab, tmp_path, certs_dir):
    lab.register("n1")
    alice = lab.client()
    for i in range(3):
        lab.request(alice, command(id=i))
    epoch = lab.c.comm.epoch
    lab.c.stopService()
    again = make_controller(lab.reactor, certs_dir, tmp_path / "state")
    assert (again.comm.epoch, again.comm.serial) == (epoch, 3)
    assert again.nodes.get("n1").registered and not again.nodes.get("n1").up
    again.stopService()


def test_crash_without_checkpoint_replays_the_journal(lab, tmp_path, certs_dir):
    lab.register("n1")
    alice = lab.client()
    for i in range(4):
        lab.request(alice, command(id=i))
    epoch = lab.c.comm.epoch
    # No stopService: as after SIGKILL, only the journal knows serials 1-4.
    lab.c.running = False
    reactor = FakeReactor()
    reactor.advance(1_000_010)
    again = make_controller(reactor, certs_dir, tmp_path / "state")
    assert (again.comm.epoch, again.comm.serial) == (epoch, 4)
    # Replayed datagrams are still repairable, signed with the new keys.
    n1 = FakeSession("n1", "node")
    again.sessionOpened(n1)
    again.frameReceived(n1, Frame({"type": "INFO", "name": "n1", "agents": CATALOGUE,
                                   "epoch": epoch, "serial": 2}))
    keys = VerifyingKeys.from_json(n1.of_type("WELCOME")[0].get("keys"))
    again.frameReceived(n1, Frame({"type": "NACK", "ranges": [[3, 4]]}))
    repaired = [decode_datagram(keys, f.blob) for f in n1.of_type("REPAIR")]
    assert [s for d in repaired for s, _ in d.numbered()] == [3, 4]
    again.stopService()


def test_periodic_checkpoints_only_when_something_changed(lab, tmp_path):
    state = tmp_path / "state"
    count = lambda: len(list(state.glob("checkpoint-*.json")))  # noqa: E731
    lab.reactor.advance(5)
    first = sorted(state.glob("checkpoint-*.json"))[-1]
    lab.reactor.pump([5.0] * 4)
    assert sorted(state.glob("checkpoint-*.json"))[-1] == first
    lab.register("n1")
    lab.request(lab.client(), command())
    lab.reactor.advance(5)
    assert sorted(state.glob("checkpoint-*.json"))[-1] != first
    assert count() <= 3


def test_a_full_disk_holds_messages_instead_of_sending_them_unjournaled(lab):
    from backend.controller.checkpoint import JournalError

    lab.register("n1")
    alice = lab.client()
    journal = lab.c.comm.journal
    real_append = journal.append
    failures = [JournalError("disk full")]

    def append(*args):
        if failures:
            raise failures.pop()
        return real_append(*args)

    journal.append = append
    lab.request(alice, command())
    assert lab.sender.take() == [] and alice.of_type("ACCEPTED") == []
    assert lab.c.comm.sent_serial == 0 and lab.c.comm.held == 1
    lab.reactor.advance(1.0)
    sent = [d for d in lab.datagrams() if d.kind == KIND_MESSAGES]
    assert len(sent) == 1 and alice.of_type("ACCEPTED")[0].get("serial") == 1


def test_a_failed_multicast_send_is_repaired_and_pings_go_on(lab):
    n1 = lab.register("n1")
    alice = lab.client()
    real_write = lab.sender.write

    def unreachable(data, addr):
        raise OSError(101, "Network is unreachable")

    lab.sender.write = unreachable
    lab.request(alice, command())
    assert alice.of_type("ACCEPTED")  # journaled and in the window
    lab.reactor.advance(1.0)  # the ping loop hits the same error...
    lab.sender.write = real_write
    lab.reactor.advance(1.0)  # ...and is still running
    assert any(d.kind == KIND_PING for d in lab.datagrams())
    lab.c.frameReceived(n1, Frame({"type": "NACK", "ranges": [[1, 1]]}))
    assert len(n1.of_type("REPAIR")) == 1


def test_a_nack_snapshot_never_includes_unsent_messages(lab):
    n1 = lab.register("n1")
    alice = lab.client()
    lab.request(alice, command(id=1))
    lab.reactor.advance(121)
    lab.c.comm.retireSerials()
    lab.c.frameReceived(alice, Frame(command(id=2, command="STOP")))  # queued, not sent
    lab.c.frameReceived(n1, Frame({"type": "NACK", "ranges": [[1, 1]]}))
    snapshot = n1.of_type("SNAPSHOT")[0]
    # The STOP was sent first, so the snapshot "as of serial 2" is true.
    assert snapshot.get("serial") == 2 and lab.c.comm.sent_serial == 2
    assert snapshot.get("snapshot")["groups"][0]["run"] == "stopped"


def test_a_real_failure_is_not_overwritten_by_a_snapshot_in_the_same_report(lab):
    n1 = lab.register("n1")
    alice = lab.client()
    lab.request(alice, command(target="n1"))
    lab.request(alice, command(command="ECHO", target="n1"))
    lab.c.frameReceived(n1, Frame({"type": "REPORT", "ack": 2, "snapshot": 2,
                                   "outcomes": [[2, "failed", "RuntimeError: no", None]]}))
    results = {r.get("serial"): r for r in alice.of_type("RESULT")}
    assert results[2].get("outcomes")["n1"]["status"] == "failed"


def test_sink_frames_never_carry_an_id_a_client_could_mistake(lab):
    n1 = lab.register("n1")
    watcher = lab.client("bob")
    lab.request(watcher, {"type": "SUBSCRIBE", "id": 1})
    watcher.take()
    lab.c.frameReceived(n1, Frame({"type": "STREAM", "id": 2, "serial": 9, "name": "x", "data": 1}))
    lab.c.frameReceived(n1, Frame({"type": "REPORT", "events": [{"id": 2, "event": "e",
                                                                  "outcomes": {}}]}))
    for frame in watcher.take():
        assert "id" not in frame.header and "serial" not in frame.header
        assert "outcomes" not in frame.header and frame.get("node") == "n1"


@pytest.mark.parametrize("info", [
    {"agents": {"NOOP": 5}},
    {"agents": {"NOOP": {"commands": "START"}}},
    {"agents": {"NOOP": {"variables": [{"name": "x", "type": "colour"}]}}},
    {"interfaces": [{"name": "eth1", "addresses": 7}]},
])
def test_info_with_a_malformed_catalogue_or_interfaces_is_refused(lab, info):
    s = FakeSession("n1", "node")
    lab.c.sessionOpened(s)
    lab.c.frameReceived(s, Frame(dict({"type": "INFO", "name": "n1"}, **info)))
    assert s.of_type("REFUSED") and s.closed and not lab.c.nodes.get("n1").up


def test_stopping_with_queued_messages_leaves_no_timer(lab):
    lab.register("n1")
    lab.c.frameReceived(lab.client(), Frame(command()))  # queued for this turn
    lab.c.stopService()
    assert [c for c in lab.reactor.getDelayedCalls() if c.active()] == []


def test_a_burst_is_followed_by_tail_pings(lab):
    lab.register("n1")
    lab.request(lab.client(), command())
    lab.sender.take()
    times = []
    for _ in range(200):
        lab.reactor.advance(0.01)
        if [d for d in lab.datagrams() if d.kind == KIND_PING]:
            times.append(round(lab.reactor.seconds() - 1_000_000, 2))
    # The periodic ping stays quiet meanwhile: the tail pings are traffic.
    assert times == [0.05, 0.25, 0.6, 1.0, 1.5]


def test_nodes_with_the_same_catalogue_share_one_and_its_merge_is_remembered(lab):
    for i in (1, 2, 3):
        lab.register(f"n{i}")
    records = [lab.c.nodes.get(f"n{i}") for i in (1, 2, 3)]
    assert records[0].agents is records[1].agents is records[2].agents
    first = lab.c.nodes.catalogue(["n1", "n2", "n3"])
    assert lab.c.nodes.catalogue(["n1", "n2", "n3"]) is first  # not merged again
    lab.c.frameReceived(lab.c.node_sessions["n2"], Frame({"type": "CATALOGUE", "agents": {}}))
    assert "NOOP" in lab.c.nodes.catalogue(["n1", "n2", "n3"])
    assert lab.c.nodes.catalogue(["n2"]) == {}  # n2's own changed: a new merge


def test_bad_frames_are_counted_each_and_logged_first_then_every_thousandth(lab):
    # A fuzzer with a valid certificate: one bad frame per connection, thousands.
    from twisted.logger import capturedLogs

    from seer.protocol.wire import WireError

    with capturedLogs() as events:
        for _ in range(2000):
            lab.c.badInput(lab.client(), WireError("json", "not JSON"))
        lab.c.badInput(lab.client(), WireError("oversized", "a frame of 9 MB"))
    assert lab.c.counters["bad_frames_json"] == 2000
    assert lab.c.counters["bad_frames_oversized"] == 1
    logged = [e for e in events if e.get("log_format", "").startswith("bad frame from")]
    assert [(e["error"], e["count"]) for e in logged] == [
        ("json: not JSON", 1), ("json: not JSON", 1000), ("json: not JSON", 2000),
        ("oversized: a frame of 9 MB", 1)]
