"""Process records (PID + start time) against real processes the test starts:
a PID that now names another process is never signalled."""

from __future__ import annotations

import subprocess
import sys

import pytest

from e2e import eventually
from seer.testbed import pids


def sleeper(seconds: int = 60) -> subprocess.Popen:
    return subprocess.Popen(["sleep", str(seconds)])


def test_a_record_matches_only_the_process_it_was_taken_of():
    process = sleeper()
    try:
        record = pids.Record("x", process.pid, pids.start_time(process.pid))
        assert pids.is_running(record)
        # Same PID, another start time: what a PID handed to a new process looks like.
        reused = pids.Record("x", process.pid, record.start - 1)
        assert not pids.is_running(reused)
        assert pids.send_signal(reused, 15) is False
        with pytest.raises(subprocess.TimeoutExpired):  # not signalled: still running
            process.wait(timeout=0.2)
        assert pids.is_running(pids.Record("x", process.pid, None)) is False  # unknown start
        assert pids.send_signal(record, 15) is True
        assert process.wait(timeout=5) == -15
        assert not pids.is_running(record)  # gone (reaped)
    finally:
        process.kill()
        process.wait()


def test_stop_terms_then_kills_and_spares_a_reused_pid():
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE, text=True)
    bystander = sleeper()
    try:
        assert stubborn.stdout.readline() == "ready\n"
        records = [pids.Record("stubborn", stubborn.pid, pids.start_time(stubborn.pid)),
                   pids.Record("reused", bystander.pid, pids.start_time(bystander.pid) + 7)]
        assert pids.stop(records, grace=0.3) == 1
        assert stubborn.wait(timeout=5) == -9
        assert bystander.poll() is None
    finally:
        for p in (stubborn, bystander):
            p.kill()
            p.wait()


def test_descendants_are_found_through_the_process_tree():
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    try:
        found = eventually(lambda: pids.descendants([shell.pid]), lambda f: len(f) == 2,
                           timeout=5, interval=0.05)
        assert len(found) == 2 and all(pids.is_running(r) for r in found)
        assert pids.stop(found, grace=2) == 2
    finally:
        shell.kill()
        shell.wait()


def test_records_from_json_refuse_what_is_not_one():
    assert pids.Record.from_json({"pid": 5, "start": 9, "name": "a"}) == pids.Record("a", 5, 9)
    for bad in (None, [], {"pid": "5"}, {"pid": -1, "start": 1}, {"pid": 5, "start": "x"}):
        assert pids.Record.from_json(bad) is None
