"""`make demo` never takes down someone else's testbed (issue 13, section 1).

The demo used the fixed name ``seerdemo`` and began with `seer testbed down
seerdemo`: on a shared machine it killed another user's demo.  Here a
testbed called ``seerdemo`` is up when the demo starts; the demo must bring
up a testbed of its own beside it, and on Ctrl-C take down its own and
only its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from e2e import eventually
from seer.testbed import build, state
from seer.testbed.netns import can_build

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

OTHER = "seerdemo"  # the name the demo used to take for itself
TINY = "[nodes]\na = {}\nb = {}\n[lans.x]\nnodes = ['a', 'b']\n"


def seer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True, text=True,
                          timeout=120)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def demo_testbed() -> str | None:
    """The testbed the demo brought up (once it is up), other than ours."""
    for name in state.known():
        if name != OTHER and (state.read(name) or {}).get("up"):
            return name
    return None


def test_the_demo_brings_up_its_own_testbed_and_takes_down_only_that(tmp_path, monkeypatch):
    if build.testbed_namespaces(OTHER):
        pytest.skip(f"a testbed called {OTHER} already runs on this machine: not ours to use")
    monkeypatch.setenv("SEER_TESTBED_DIR", str(tmp_path / "testbeds"))
    monkeypatch.delenv("SEER_TESTBED", raising=False)
    (tmp_path / "tiny.toml").write_text(TINY)
    up = seer("testbed", "up", str(tmp_path / "tiny.toml"), "--name", OTHER)
    assert up.returncode == 0, up.stderr
    theirs = build.testbed_namespaces(OTHER)
    controller = state.read(OTHER)["pids"]["controller"]
    output = tmp_path / "demo.out"
    mine = None
    with open(output, "w") as out:
        demo = subprocess.Popen([sys.executable, "-m", "seer.demo"], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, SEER_DEMO_PHASE="2"))
    try:
        mine = eventually(lambda: demo_testbed() if alive(controller) else "disturbed",
                          lambda found: found is not None, timeout=90, interval=0.2)
        assert alive(controller) and build.testbed_namespaces(OTHER) == theirs, \
            f"the demo took down testbed {OTHER}:\n{output.read_text()}"
        assert mine not in (None, "disturbed"), output.read_text()
        assert build.testbed_namespaces(mine), "the demo's own testbed has no namespaces"
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C at the terminal: the demo's process group
        assert demo.wait(timeout=90) == 130, output.read_text()
        assert "interrupted" in output.read_text()
        assert build.testbed_namespaces(mine) == [] and mine not in state.known(), \
            f"the demo left its testbed {mine} behind:\n{output.read_text()}"
        assert alive(controller) and build.testbed_namespaces(OTHER) == theirs
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if mine and mine != "disturbed" and build.testbed_namespaces(mine):
            seer("testbed", "down", mine)
        seer("testbed", "down", OTHER)
    assert build.testbed_namespaces(OTHER) == []
