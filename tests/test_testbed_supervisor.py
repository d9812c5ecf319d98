"""The testbed's supervisor on a fake clock and fake processes: restarts with
backoff, stop that stays stopped, restart on request, shutdown; and its
control requests."""

from __future__ import annotations

import signal

import pytest

from seer.testbed import control
from seer.testbed.supervisor import Backoff, Program, Supervisor, SupervisorError

BACKOFF = Backoff(first=0.5, factor=2.0, longest=4.0, stable=10.0)


@pytest.fixture
def made(process_reactor, tmp_path):
    """A supervisor of three programs on the fake reactor, and its table changes."""
    changes: list[dict] = []
    swept: list[bool] = []
    programs = [Program(name, ["/usr/bin/env", "prog", name], tmp_path / f"{name}.log")
                for name in ("controller", "n1", "n2")]
    supervisor = Supervisor(process_reactor, programs, backoff=BACKOFF, grace=5.0, env={},
                            on_change=changes.append, start_time=lambda pid: pid * 10,
                            sweep=lambda: swept.append(True))
    supervisor.start()
    return supervisor, process_reactor, changes, swept


def current(reactor, name: str):
    """The live fake process of program ``name``."""
    [process] = [p for p in reactor.alive() if p.args[-1] == name]
    return process


def test_every_program_starts_with_its_pid_and_start_time_recorded(made):
    supervisor, reactor, changes, _ = made
    assert [p.args for p in reactor.spawned] == [["/usr/bin/env", "prog", n]
                                                 for n in ("controller", "n1", "n2")]
    table = changes[-1]
    for process in reactor.spawned:
        entry = table[process.args[-1]]
        assert entry["state"] == "running" and entry["pid"] == process.pid
        assert entry["start"] == process.pid * 10  # read at spawn, to tell a reused PID
    assert {r.name for r in supervisor.records()} == {"controller", "n1", "n2"}


def test_a_process_that_dies_is_restarted_after_a_backoff_that_grows(made):
    supervisor, reactor, _, _ = made
    delays = []
    for _ in range(5):
        current(reactor, "n1").exit(signal=signal.SIGKILL)
        entry = supervisor.status()["n1"]
        assert entry["state"] == "waiting" and entry["pid"] is None
        delay = entry["next_start_in"]
        delays.append(delay)
        reactor.advance(delay - 0.01)
        assert not [p for p in reactor.alive() if p.args[-1] == "n1"]
        reactor.advance(0.02)
        assert supervisor.status()["n1"]["state"] == "running"
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]  # doubling, up to `longest`
    assert supervisor.status()["n1"]["restarts"] == 5
    assert supervisor.status()["n1"]["last_exit"] == "killed by SIGKILL"
    assert len(reactor.find("n1")) == 6
    assert supervisor.status()["n2"]["restarts"] == 0  # the others untouched


def test_a_run_that_lasted_resets_the_backoff(made):
    supervisor, reactor, _, _ = made
    for _ in range(3):
        current(reactor, "n1").exit(3)
        reactor.advance(supervisor.status()["n1"]["next_start_in"])
    reactor.advance(BACKOFF.stable)  # a stable run
    current(reactor, "n1").exit(3)
    assert supervisor.status()["n1"]["next_start_in"] == BACKOFF.first
    assert supervisor.status()["n1"]["last_exit"] == "exit code 3"


def test_the_supervisor_notes_exits_and_restarts_in_the_process_log(made, tmp_path):
    _, reactor, _, _ = made
    current(reactor, "n1").exit(signal=signal.SIGKILL)
    reactor.advance(1)
    log = (tmp_path / "n1.log").read_text()
    assert "exited unexpectedly (killed by SIGKILL)" in log
    assert "restarting in 0.5 s (restart 1)" in log
    assert log.count("started, pid") == 2


def test_stop_keeps_it_stopped_until_restart(made):
    supervisor, reactor, _, _ = made
    process = current(reactor, "n2")
    done = supervisor.stop("n2")
    assert process.signals == [signal.SIGTERM] and not done.called
    reactor.advance(0)  # the fake dies of SIGTERM a turn later
    assert done.called and supervisor.status()["n2"]["state"] == "stopped"
    reactor.advance(3600)
    assert len(reactor.find("n2")) == 1  # never started again
    assert supervisor.status()["n2"]["restarts"] == 0
    restarted = supervisor.restart("n2")
    assert restarted.called and restarted.result["state"] == "running"
    assert len(reactor.find("n2")) == 2


def test_stop_uses_sigkill_after_the_grace_period(made):
    supervisor, reactor, _, _ = made
    process = current(reactor, "n1")
    process.ignore(signal.SIGTERM)
    done = supervisor.stop("n1")
    reactor.advance(4.9)
    assert not done.called
    reactor.advance(0.2)
    reactor.advance(0)
    assert process.signals == [signal.SIGTERM, signal.SIGKILL] and done.called
    assert supervisor.status()["n1"]["state"] == "stopped"


def test_restart_of_a_running_process_stops_it_then_starts_it_at_once(made):
    supervisor, reactor, _, _ = made
    old = current(reactor, "n1")
    d = supervisor.restart("n1")
    assert not d.called and supervisor.status()["n1"]["state"] == "restarting"
    reactor.advance(0)
    new = current(reactor, "n1")
    assert new is not old and d.called and d.result["pid"] == new.pid
    assert supervisor.status()["n1"]["restarts"] == 0  # asked for, not a failure


def test_restart_of_a_waiting_process_does_not_wait_for_the_backoff(made):
    supervisor, reactor, _, _ = made
    current(reactor, "n1").exit(1)
    assert supervisor.status()["n1"]["state"] == "waiting"
    supervisor.restart("n1")
    assert supervisor.status()["n1"]["state"] == "running"
    reactor.advance(10)
    assert len(reactor.alive("prog")) == 3  # the pending restart was cancelled


def test_shutdown_stops_everything_for_good_then_sweeps(made):
    supervisor, reactor, changes, swept = made
    current(reactor, "n1").exit(1)  # one waiting to restart
    d = supervisor.shutdown()
    assert supervisor.shutdown() is not d  # asking twice is asking once
    assert not swept
    reactor.advance(0)
    assert d.called and swept == [True] and supervisor.finished.called
    reactor.advance(3600)
    assert reactor.alive() == []
    assert {e["state"] for e in changes[-1].values()} == {"stopped"}
    with pytest.raises(SupervisorError, match="shutting down"):
        supervisor.restart("n1")


def test_a_program_that_cannot_start_is_retried(process_reactor, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError(2, "No such file or directory")

    supervisor = Supervisor(process_reactor, [Program("x", ["/nonexistent"], tmp_path / "x.log")],
                            backoff=BACKOFF, env={})
    process_reactor.spawnProcess = refuse
    supervisor.start()
    assert supervisor.status()["x"]["state"] == "waiting"
    assert "could not be started" in (tmp_path / "x.log").read_text()


def test_control_requests_are_answered_and_bad_ones_refused(made):
    supervisor, reactor, _, _ = made
    assert set(control.answer(supervisor, {"op": "status"})["processes"]) == {
        "controller", "n1", "n2"}
    assert control.answer(supervisor, {"op": "stop"}) == {"ok": False,
                                                          "error": 'stop needs "name"'}
    assert "unknown op 'fly'" in control.answer(supervisor, {"op": "fly"})["error"]
    assert "no process called 'n9'" in control.answer(supervisor, {"op": "restart",
                                                                   "name": "n9"})["error"]
    assert control.answer(supervisor, ["op"])["ok"] is False
    stopped = control.answer(supervisor, {"op": "stop", "name": "n1"})
    reactor.advance(0)
    assert stopped.result == {"ok": True, "process": supervisor.status()["n1"]}


def test_the_client_says_plainly_when_no_supervisor_answers(tmp_path):
    with pytest.raises(control.ControlError, match="supervisor is not running"):
        control.request(tmp_path, "status", timeout=1)


def test_a_restart_asked_for_while_stopping_answers_both_callers(made):
    supervisor, reactor, _, _ = made
    stopping = supervisor.stop("n1")
    restarting = supervisor.restart("n1")
    reactor.advance(0)
    assert stopping.called and restarting.called
    assert supervisor.status()["n1"]["state"] == "running"
