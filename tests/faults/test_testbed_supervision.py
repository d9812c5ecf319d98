"""A testbed's daemons are supervised (issue 13, section 1).

A daemon killed with SIGKILL is started again by the testbed's supervisor,
with backoff; `seer testbed status` and the daemon's own log say so; and the
restarted daemon catches up on what it missed by itself.  `seer testbed
stop NODE` stops one and it stays stopped (past any backoff) until `seer
testbed restart NODE`, which also restarts a running one on purpose.

One testbed of three nodes is shared by the module's tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e import eventually, running_testbed
from seer.client import Experiment
from seer.testbed import build, state
from seer.testbed.netns import can_build

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

TRIO = "[nodes]\na = {}\nb = {}\nc = {}\n[lans.x]\nnodes = ['a', 'b', 'c']\n"


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("supervision")
    (folder / "trio.toml").write_text(TRIO)
    with running_testbed(folder / "testbeds", folder / "trio.toml",
                         f"sv{os.getpid() % 1000}") as testbed:
        yield testbed


def seer(bed, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SEER_TESTBED=bed["name"])
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def client(bed) -> Experiment:
    c = bed["client"]
    return Experiment(c["controller"], c["certs"], c["identity"])


def node_table(bed) -> dict[str, dict]:
    with client(bed) as exp:
        return {n["name"]: n for n in exp.node_table()["nodes"]}


def daemon_pid(bed, node: str) -> int | None:
    """The PID of the node's daemon, found as the daemon process in the node's
    namespace -- not from SEER's records, which are what is under test."""
    ns_inode = os.stat(f"/run/netns/{build.node_ns(bed['name'], node)}").st_ino
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}/ns/net").st_ino == ns_inode and \
                    b"daemon" in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0"):
                return int(entry)
        except OSError:
            continue
    return None


def status_of(bed) -> dict:
    """`seer testbed status NAME --json`, for this testbed."""
    run = seer(bed, "testbed", "status", bed["name"], "--json")
    assert run.returncode == 0, run.stderr
    [testbed] = json.loads(run.stdout)["testbeds"]
    return testbed


def test_a_killed_daemon_is_restarted_shown_and_catches_up(bed):
    first = daemon_pid(bed, "a")
    assert first == bed["pids"]["a"]
    os.kill(first, signal.SIGKILL)
    with client(bed) as exp:
        # Sent while a is dead (or just restarting): it must still end up applied there.
        exp.agent("NOOP", "late").set(note="sent while a was down", target="b,c", timeout=5)
        again = eventually(lambda: daemon_pid(bed, "a"), lambda pid: pid not in (None, first),
                           timeout=15, interval=0.1)
        assert again not in (None, first), "the killed daemon was not started again"
        table = eventually(lambda: node_table(bed), lambda t: t["a"]["up"], timeout=20,
                           interval=0.2)
        serial = exp.status()["serial"]
        assert eventually(lambda: node_table(bed)["a"]["serial"], lambda s: s >= serial,
                          timeout=20, interval=0.2) >= serial  # caught up by itself
        assert table["a"]["up"]
    a = status_of(bed)["processes"]["a"]
    assert a["state"] == "running" and a["restarts"] == 1 and a["pid"] == daemon_pid(bed, "a")
    assert a["last_exit"] == "killed by SIGKILL"
    text = seer(bed, "testbed", "status").stdout
    assert "last exit: killed by SIGKILL" in text
    log = (state.directory(bed["name"]) / "logs" / "a.log").read_text()
    assert "exited unexpectedly (killed by SIGKILL)" in log and "restarting in" in log


def test_stop_keeps_a_daemon_stopped_until_restart(bed):
    stop = seer(bed, "testbed", "stop", "b")
    assert stop.returncode == 0, stop.stderr
    assert "stays stopped" in stop.stdout
    assert daemon_pid(bed, "b") is None
    eventually(lambda: node_table(bed), lambda t: not t["b"]["up"], timeout=15, interval=0.2)
    deadline = time.monotonic() + 3  # longer than the first backoff delays
    while time.monotonic() < deadline:
        assert daemon_pid(bed, "b") is None, "a stopped daemon was started again"
        time.sleep(0.2)
    assert status_of(bed)["processes"]["b"]["state"] == "stopped"
    restart = seer(bed, "testbed", "restart", "b")
    assert restart.returncode == 0, restart.stderr
    assert daemon_pid(bed, "b") is not None
    eventually(lambda: node_table(bed), lambda t: t["b"]["up"], timeout=20, interval=0.2)


def test_restart_restarts_a_running_daemon_on_purpose(bed):
    before = daemon_pid(bed, "c")
    restart = seer(bed, "testbed", "restart", "c")
    assert restart.returncode == 0, restart.stderr
    after = daemon_pid(bed, "c")
    assert after not in (None, before) and f"pid {after}" in restart.stdout
    eventually(lambda: node_table(bed), lambda t: t["c"]["up"], timeout=20, interval=0.2)
    assert status_of(bed)["processes"]["c"]["restarts"] == 0  # asked for: not counted as a failure


def test_restart_of_an_unknown_node_says_which_exist(bed):
    run = seer(bed, "testbed", "restart", "zz")
    assert run.returncode == 2
    assert "no process called 'zz'" in run.stderr and "a, b, c" in run.stderr
