"""Agent processes: own process group, logged output, exit codes, nothing left.

Most of the behaviour runs on a FakeProcessReactor (a clock, fake spawns):
output, exit codes, SIGTERM then SIGKILL after the grace, pipes held open,
waiting for a port.  What only the kernel can show -- process groups,
sessions, grandchildren killed with their group, the /proc sweep -- runs
real processes, waiting for each event rather than for a fixed time.
"""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import signal
import uuid

import pytest
import pytest_twisted
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater

from backend.runtime.processes import (
    GRACE,
    PIPE_LINGER,
    TAG_VARIABLE,
    ProcessManager,
    in_own_session,
    sweep,
    wait_for_port,
)
from procfs import tagged, zombies
from seer.testing import FAKE_PID_BASE


def manager(tmp_path, clock, **kw) -> ProcessManager:
    return ProcessManager(clock, tmp_path / "agent.log", f"test/{uuid.uuid4()}", **kw)


def log_of(m: ProcessManager, tmp_path) -> str:
    m.close()
    return (tmp_path / "agent.log").read_text()


# -- on the clock ------------------------------------------------------------------


def test_output_goes_to_the_log_and_the_exit_code_is_counted(tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    p = m.spawn(["sh", "-c", "echo hello; echo oops >&2; exit 3"], name="shell")
    (fake,) = process_reactor.spawned
    fake.output(b"hel")
    fake.output(b"lo\nwor")  # lines come whole, however the pipe splits them
    fake.output(b"oops\n", fd=2)
    fake.output(b"ld")  # a last line without a newline
    fake.exit(3)
    assert p.ended.called and p.exit_code == 3 and p.signal is None
    log = log_of(m, tmp_path)
    assert f"[shell {p.pid} out] hello\n" in log
    assert f"[shell {p.pid} out] world\n" in log
    assert f"[shell {p.pid} err] oops\n" in log
    assert f"[shell {p.pid}] ended: exit code 3" in log
    assert (m.counters["exited_error"], m.counters["launched"]) == (1, 1)
    assert m.running == {}


def test_exits_and_kills_are_counted_apart_and_reported_to_on_exit(tmp_path, process_reactor):
    ended = []
    m = manager(tmp_path, process_reactor, on_exit=ended.append)
    ok, killed = m.spawn(["true"]), m.spawn(["sleep", "9"])
    process_reactor.spawned[0].exit(0)
    process_reactor.spawned[1].exit(signal=signal.SIGKILL)
    assert ended == [ok, killed]
    assert (ok.exit_code, killed.exit_code, killed.signal) == (0, None, signal.SIGKILL)
    assert killed.describe_exit() == "killed by signal 9"
    assert (m.counters["exited_ok"], m.counters["killed"], m.counters["exited_error"]) == (1, 1, 0)


def test_each_process_is_spawned_in_a_session_of_its_own_with_the_tag(tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    p = m.spawn(["sleep", "30"], env={"A": "1"}, path=str(tmp_path))
    (fake,) = process_reactor.spawned
    assert fake.pid == p.pid and m.running == {p.pid: p}
    # setsid (or the Python shim that calls os.setsid) execs the command in place.
    assert fake.args == in_own_session([shutil.which("sleep"), "30"])
    assert fake.executable == fake.args[0]
    assert fake.env == {"A": "1", TAG_VARIABLE: m.tag}
    assert fake.path == str(tmp_path)
    assert 0 not in fake.open_fds  # stdin closed at once: agents' tools read no input


def test_stopping_sends_sigterm_to_every_group_and_fires_when_all_are_reaped(
        tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    a, b = m.spawn(["sleep", "9"]), m.spawn(["sleep", "9"])
    done = m.terminate_all()
    assert [p.signals for p in process_reactor.spawned] == [[signal.SIGTERM], [signal.SIGTERM]]
    assert not done.called  # they die a turn later, as real processes do
    process_reactor.advance(0)
    assert done.called and (a.signal, b.signal) == (signal.SIGTERM, signal.SIGTERM)
    assert process_reactor.getDelayedCalls() == []  # the SIGKILL timer is cancelled
    assert m.counters["killed"] == 2


def test_a_process_ignoring_sigterm_is_killed_after_the_grace(tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    p = m.spawn(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
    (fake,) = process_reactor.spawned
    fake.ignore(signal.SIGTERM)
    done = m.terminate_all(grace=0.5)
    process_reactor.advance(0.49)
    assert not done.called and fake.signals == [signal.SIGTERM]
    process_reactor.advance(0.01)
    assert fake.signals == [signal.SIGTERM, signal.SIGKILL]
    process_reactor.advance(0)
    assert done.called and p.signal == signal.SIGKILL


def test_the_default_grace_is_the_documented_one(tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    m.spawn(["sleep", "9"])
    process_reactor.spawned[0].ignore(signal.SIGTERM)
    m.terminate_all()
    process_reactor.advance(GRACE - 0.001)
    assert process_reactor.spawned[0].signals == [signal.SIGTERM]
    process_reactor.advance(0.001)
    assert process_reactor.spawned[0].signals == [signal.SIGTERM, signal.SIGKILL]


def test_stopping_with_nothing_running_fires_at_once(tmp_path, process_reactor):
    assert manager(tmp_path, process_reactor).terminate_all().called


def test_pipes_held_by_a_stray_child_are_closed_after_the_linger(tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    p = m.spawn(["sh", "-c", "sleep 60 & exit 0"], name="sh")
    (fake,) = process_reactor.spawned
    fake.exit(0, pipes_open=True)  # reaped, but the background sleep holds stdout
    assert p.exit_code == 0 and not p.ended.called
    fake.output(b"late line\n")
    process_reactor.advance(PIPE_LINGER - 0.01)
    assert not p.ended.called
    process_reactor.advance(0.01)
    assert p.ended.called and fake.open_fds == set()
    assert f"[sh {p.pid} out] late line" in log_of(m, tmp_path)


def test_pipes_closed_in_time_end_the_process_without_waiting(tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    p = m.spawn(["true"])
    fake = process_reactor.spawned[0]
    fake.exit(0, pipes_open=True)
    fake.close_pipes()
    assert p.ended.called
    assert process_reactor.getDelayedCalls() == []  # the linger timer is cancelled


def test_on_line_and_on_output_see_lines_first_and_may_keep_them_out_of_the_log(
        tmp_path, process_reactor):
    seen = []
    m = manager(tmp_path, process_reactor,
                on_output=lambda p, fd, line: seen.append(("manager", line)) or line == b"quiet")
    p = m.spawn(["true"], name="tool",
                on_line=lambda fd, line: seen.append(("process", line)) or line == b"mine")
    fake = process_reactor.spawned[0]
    fake.output(b"mine\nquiet\nloud\n")
    fake.exit(0)
    assert seen == [("process", b"mine"), ("process", b"quiet"), ("manager", b"quiet"),
                    ("process", b"loud"), ("manager", b"loud")]
    log = log_of(m, tmp_path)
    assert f"[tool {p.pid} out] loud" in log and "mine" not in log and "quiet" not in log


def test_a_missing_command_is_a_clear_error(tmp_path, process_reactor):
    m = manager(tmp_path, process_reactor)
    with pytest.raises(FileNotFoundError, match="command not found: no-such-program-here"):
        m.spawn(["no-such-program-here"])
    assert process_reactor.spawned == [] and m.counters["launched"] == 0


def test_fake_pids_are_out_of_reach_of_real_signals(tmp_path, process_reactor):
    from backend.runtime import processes

    m = manager(tmp_path, process_reactor)
    p = m.spawn(["true"])
    assert p.pid >= FAKE_PID_BASE > 2**22  # above Linux's PID_MAX_LIMIT: no real process
    with pytest.raises(ProcessLookupError):
        os.kill(FAKE_PID_BASE, 0)
    processes._kill_group(p.pid, signal.SIGTERM)  # a group signal reaches the fake
    assert process_reactor.spawned[0].signals == [signal.SIGTERM]
    process_reactor.advance(0)
    assert p.signal == signal.SIGTERM
    processes._kill_group(p.pid, signal.SIGKILL)  # ended: nothing is signalled at all
    assert process_reactor.spawned[0].signals == [signal.SIGTERM]


# -- waiting for a port, on the clock -----------------------------------------------------


def test_wait_for_port_retries_until_something_listens(process_reactor):
    d = wait_for_port(process_reactor, "127.0.0.1", 8000, timeout=10, interval=0.5)
    assert process_reactor.answer_tcp(accept=False) == 1
    process_reactor.advance(0.5)
    assert process_reactor.answer_tcp(accept=False) == 1
    process_reactor.advance(0.5)
    assert not d.called
    assert process_reactor.answer_tcp(accept=True) == 1
    assert d.called and d.result is None
    assert [c[:2] for c in process_reactor.tcpClients] == [("127.0.0.1", 8000)] * 3


def test_wait_for_port_times_out_with_the_address_in_the_error(process_reactor):
    d = wait_for_port(process_reactor, "127.0.0.1", 8000, timeout=2, interval=0.5)
    failures = []
    d.addErrback(failures.append)
    for _ in range(5):
        process_reactor.answer_tcp(accept=False)
        process_reactor.advance(0.5)
    process_reactor.answer_tcp(accept=False)
    (failure,) = failures
    assert failure.check(TimeoutError)
    assert "nothing listens on 127.0.0.1:8000 after 2 s" in str(failure.value)
    assert process_reactor.getDelayedCalls() == []


# -- what only the kernel can show: real processes -------------------------------------------


@inlineCallbacks
def until(condition, timeout: float = 10.0, interval: float = 0.02):
    """Wait (without blocking the reactor) for ``condition()``; fail after ``timeout``."""
    deadline = global_reactor.seconds() + timeout
    while not condition():
        assert global_reactor.seconds() < deadline, f"{condition} did not hold in {timeout} s"
        yield deferLater(global_reactor, interval, lambda: None)


def _command_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # gone meanwhile
        return None


def real_manager(tmp_path) -> ProcessManager:
    return manager(tmp_path, global_reactor)


@pytest_twisted.inlineCallbacks
def test_each_process_runs_in_its_own_process_group_and_session(tmp_path):
    m = real_manager(tmp_path)
    p = m.spawn(["sleep", "30"])
    yield until(lambda: os.getsid(p.pid) == p.pid)  # setsid has run in the child
    assert os.getpgid(p.pid) == p.pid
    yield m.terminate_all(grace=2)
    assert p.signal == signal.SIGTERM and m.counters["killed"] == 1


@pytest_twisted.inlineCallbacks
def test_stopping_takes_the_whole_group_and_leaves_no_zombie(tmp_path):
    m = real_manager(tmp_path)
    m.spawn(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    yield until(lambda: len(tagged(m.tag)) == 3)  # the shell and its two children
    yield m.terminate_all(grace=2)
    yield until(lambda: tagged(m.tag) == [])
    assert zombies(os.getpid()) == []


@pytest_twisted.inlineCallbacks
def test_sweep_finds_processes_that_left_their_group(tmp_path):
    m = real_manager(tmp_path)
    p = m.spawn(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 & exit 0"])
    yield p.ended

    def escaped_sleeps():
        # `setsid` forks when it leads its group: until the child has exec'd
        # sleep, the tagged process may be setsid itself, about to exit.
        return [pid for pid in tagged(m.tag) if _command_of(pid) == "sleep"]

    yield until(lambda: len(escaped_sleeps()) == 1)  # in a session of its own
    (stray,) = escaped_sleeps()
    assert sweep(m.tag) == [stray]
    yield until(lambda: tagged(m.tag) == [])
