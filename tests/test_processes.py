"""Agent processes: own process group, logged output, exit codes, nothing left."""

from __future__ import annotations

import os
import uuid

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from backend.runtime.processes import ProcessManager, sweep
from procfs import tagged, zombies


def manager(tmp_path, **kw):
    return ProcessManager(reactor, tmp_path / "agent.log", f"test/{uuid.uuid4()}", **kw)


@pytest_twisted.inlineCallbacks
def test_output_goes_to_the_log_and_the_exit_code_is_counted(tmp_path):
    m = manager(tmp_path)
    p = m.spawn(["sh", "-c", "echo hello; echo oops >&2; exit 3"], name="shell")
    yield p.ended
    m.close()
    log = (tmp_path / "agent.log").read_text()
    assert f"[shell {p.pid} out] hello" in log
    assert f"[shell {p.pid} err] oops" in log
    assert f"[shell {p.pid}] ended: exit code 3" in log
    assert p.exit_code == 3 and m.counters["exited_error"] == 1 and m.counters["launched"] == 1


@pytest_twisted.inlineCallbacks
def test_each_process_runs_in_its_own_process_group_and_session(tmp_path):
    m = manager(tmp_path)
    p = m.spawn(["sleep", "30"])
    for _ in range(100):  # until setsid has run in the child
        if os.getsid(p.pid) == p.pid:
            break
        yield deferLater(reactor, 0.01, lambda: None)
    assert os.getpgid(p.pid) == p.pid and os.getsid(p.pid) == p.pid
    yield m.terminate_all(grace=2)
    assert p.signal is not None and m.counters["killed"] == 1


@pytest_twisted.inlineCallbacks
def test_stopping_takes_the_whole_group_and_leaves_no_zombie(tmp_path):
    m = manager(tmp_path)
    m.spawn(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    yield deferLater(reactor, 0.2, lambda: None)
    assert len(tagged(m.tag)) == 3
    yield m.terminate_all(grace=2)
    yield deferLater(reactor, 0.2, lambda: None)
    assert tagged(m.tag) == []
    assert zombies(os.getpid()) == []


@pytest_twisted.inlineCallbacks
def test_a_process_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    m = manager(tmp_path)
    p = m.spawn(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
    yield deferLater(reactor, 0.2, lambda: None)
    started = reactor.seconds()
    yield m.terminate_all(grace=0.5)
    assert reactor.seconds() - started >= 0.5
    assert p.signal == 9


@pytest_twisted.inlineCallbacks
def test_sweep_finds_processes_that_left_their_group(tmp_path):
    m = manager(tmp_path)
    p = m.spawn(["sh", "-c", "setsid sleep 60 & exit 0"])
    yield p.ended
    yield deferLater(reactor, 0.2, lambda: None)
    assert len(tagged(m.tag)) == 1  # the escaped sleep
    assert sweep(m.tag)
    for _ in range(50):
        if not tagged(m.tag):
            break
        yield deferLater(reactor, 0.1, lambda: None)
    assert tagged(m.tag) == []


def test_a_missing_command_is_a_clear_error(tmp_path):
    m = manager(tmp_path)
    try:
        m.spawn(["no-such-program-here"])
    except FileNotFoundError as e:
        assert "command not found: no-such-program-here" in str(e)
    else:
        raise AssertionError("expected FileNotFoundError")
