"""End to end: a real controller and real daemons, multicast on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from conftest import TEST_AGENTS
from e2e import GroupTap, eventually, lab_for, node_stats, recorded_numbers, records
from seer.protocol.datagrams import (
    KIND_MESSAGES,
    SigningKeys,
    encode_datagram,
    peek_datagram_header,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab10(tmp_path_factory, certs_dir):
    lab = lab_for(tmp_path_factory.mktemp("lab10"), certs_dir, 10)
    with lab:
        with lab.experiment() as exp:  # the groups the tests send commands to
            for group in ("g", "replay"):
                exp.set("RECORDER", group, {"label": "test"})
        yield lab


def test_a_command_to_10_daemons_is_applied_on_all_10(lab10):
    run = lab10.cli("start", "RECORDER", "g", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert len(result["outcomes"]) == 10
    assert {o["status"] for o in result["outcomes"].values()} == {"applied"}
    assert all(records(lab10, f"n{i}")[-1] == {"event": "START"} for i in range(1, 11))


def test_cli_prints_each_node_and_exits_nonzero_when_one_fails(lab10):
    run = lab10.cli("command", "RECORDER", "g", "FAIL", "why=disk full", "--target", "n1,n2")
    assert run.returncode == 1
    assert "n1  failed: RuntimeError: disk full" in run.stdout
    assert "2 failed" in run.stdout


def test_bad_requests_are_refused_with_exit_2_and_nothing_sent(lab10):
    with lab10.experiment() as exp:
        before = exp.status()["serial"]
    run = lab10.cli("set", "RECORDER", "g", "count=many")
    assert run.returncode == 2 and "count: expected an integer, got 'many'" in run.stderr
    run = lab10.cli("start", "RECORDER", "g", "--target", "web*")
    assert run.returncode == 2 and "'web*' matches no node" in run.stderr
    with lab10.experiment() as exp:
        assert exp.status()["serial"] == before


def test_agents_lists_types_and_reports_broken_modules(lab10):
    run = lab10.cli("agents")
    assert run.returncode == 0
    assert "RECORDER -- Records every command it runs (tests) [Measurement]" in run.stdout
    assert "count (int = 0): an integer, to test type checks" in run.stdout
    assert "broken_import.py: ImportError: this agent module is broken on purpose" in run.stderr


def test_nodes_lists_every_node_up(lab10):
    run = lab10.cli("nodes", "--wait", "n1", "n10", "--timeout", "5")
    assert run.returncode == 0
    assert "10 of 10 node(s) up" in run.stdout
    assert "all 2 awaited node(s) are up" in run.stdout


def test_forged_and_replayed_datagrams_are_never_dispatched(lab10):
    tap = GroupTap(lab10)
    try:
        with lab10.experiment() as exp:
            pending = exp.submit_command("RECORDER", "replay", "RECORD", {"i": 1})
            real = tap.capture(lambda d: peek_datagram_header(d)[0] == KIND_MESSAGES
                               and b'"group":"replay"' in d)
            pending.result()
            epoch, serial = peek_datagram_header(real)[1:3]
            forged = encode_datagram(SigningKeys.generate(), KIND_MESSAGES, epoch, serial + 1, [
                {"type": "COMMAND", "agent": "RECORDER", "group": "replay", "command": "RECORD",
                 "args": {"i": 666}, "target": "*"}])
            tap.inject(forged)
            tap.inject(real)
            exp.command("RECORDER", "replay", "RECORD", {"i": 2})
            exp.command("RECORDER", "replay", "RECORD", {"i": 3})
    finally:
        tap.close()
    for i in range(1, 11):
        assert recorded_numbers(lab10, f"n{i}", "replay") == [1, 2, 3]
    # The nodes' counters reach the controller within their stats interval.
    stats = eventually(lambda: node_stats(lab10),
                       lambda st: len(st) == 10 and all(
                           s.get("dropped_mac", 0) >= 1 and s.get("duplicates", 0) >= 1
                           for s in st.values()))
    assert len(stats) == 10, stats
    for name, s in stats.items():
        assert s.get("dropped_mac", 0) >= 1 and s.get("duplicates", 0) >= 1, (name, s)


def test_1000_commands_under_20_percent_receive_loss_arrive_in_order_exactly_once(
        tmp_path, certs_dir):
    lab = lab_for(tmp_path, certs_dir, 10,
                  common_daemon_args=["--agent-dirs", str(TEST_AGENTS), "--rx-drop", "0.2"])
    with lab:
        with lab.experiment() as exp:
            exp.set("RECORDER", "g", {"label": "lossy"})
            started = time.monotonic()
            pending = []
            for i in range(1000):
                pending.append(exp.submit_command("RECORDER", "g", "RECORD", {"i": i}, timeout=30))
                if len(pending) >= 50:
                    pending.pop(0).result()
            for p in pending:
                p.result()
            elapsed = time.monotonic() - started
        stats = eventually(lambda: node_stats(lab),
                           lambda st: all(s.get("rx_dropped", 0) > 0 for s in st.values()))
    print(f"1000 commands to 10 daemons at 20% loss in {elapsed:.1f} s")
    for i in range(1, 11):
        assert recorded_numbers(lab, f"n{i}") == list(range(1000)), f"n{i}"
    for name, s in stats.items():
        assert s.get("rx_dropped", 0) > 0, (name, s)


def test_controller_killed_and_restarted_continues_serials(tmp_path, certs_dir):
    lab = lab_for(tmp_path, certs_dir, 5)
    with lab:
        with lab.experiment() as exp:
            exp.agent("RECORDER", "g").set(label="before")
            for i in range(5):
                exp.command("RECORDER", "g", "RECORD", {"i": i})
            before = exp.status()
        lab.kill_controller(signal.SIGKILL)
        lab.start_controller()
        took = lab.wait_registered(timeout=60)
        with lab.experiment() as exp:
            after = exp.status()
            result = exp.command("RECORDER", "g", "RECORD", {"i": 99})
        assert after["epoch"] == before["epoch"]
        assert after["serial"] == before["serial"]
        assert result.serial == before["serial"] + 1
        assert result.ok and len(result.outcomes) == 5
        print(f"all 5 daemons re-registered {took:.1f} s after the restart")
    for i in range(1, 6):
        assert recorded_numbers(lab, f"n{i}") == [0, 1, 2, 3, 4, 99]
        assert records(lab, f"n{i}")[-1]["label"] == "before"


def test_a_daemon_survives_failed_handshakes_and_registers_when_the_controller_comes(
        tmp_path, certs_dir):
    import threading

    lab = lab_for(tmp_path, certs_dir, 1, common_daemon_args=["--agent-dirs", str(TEST_AGENTS)])
    lab.make_certs()
    impostor = socket.socket()
    impostor.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    impostor.bind(("127.0.0.1", lab.port))
    impostor.listen()
    impostor.settimeout(0.2)
    refused = []
    stop = threading.Event()

    def accept_and_hang_up():  # TCP connects, TLS never completes
        while not stop.is_set():
            try:
                connection, _ = impostor.accept()
                refused.append(1)
                connection.close()
            except OSError:
                pass

    thread = threading.Thread(target=accept_and_hang_up)
    thread.start()
    try:
        lab.start_daemon("n1")
        # It keeps trying: wait for its second attempt to be turned away.
        eventually(lambda: len(refused), lambda n: n >= 2, timeout=20, interval=0.1)
    finally:
        stop.set()
        thread.join()
        impostor.close()
    assert len(refused) >= 2
    try:
        lab.start_controller()
        took = lab.wait_registered(timeout=30)
        with lab.experiment() as exp:
            assert exp.agent("RECORDER", "g").start().ok
        assert took < 30
    finally:
        lab.stop()
    assert "closed before WELCOME" in (tmp_path / "n1.log").read_text()
