"""End to end: a real controller and real daemons, multicast on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import pytest

from conftest import TEST_AGENTS
from e2e import eventually, lab_for, records

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab10(tmp_path_factory, certs_dir):
    lab = lab_for(tmp_path_factory.mktemp("lab10"), certs_dir, 10)
    with lab:
        with lab.experiment() as exp:  # the group the tests send commands to
            exp.set("RECORDER", "g", {"label": "test"})
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
