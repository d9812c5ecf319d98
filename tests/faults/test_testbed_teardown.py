"""The testbed tears down only what it made (issue 13, section 1).

A user's own process whose environment says ``SEER_TESTBED=NAME`` (a shell
that followed the operator's guide) neither stops `seer testbed up NAME`
nor is killed by `seer testbed down NAME`; and `down NAME` leaves alone the
namespaces and processes of a testbed whose name merely begins with
``NAME-``.  Both hold because the testbed stops only the processes it
recorded and removes only its own namespaces, matched exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seer.client import Experiment
from seer.testbed import build, state
from seer.testbed.netns import can_build

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

TINY = "[nodes]\na = {}\nb = {}\n[lans.x]\nnodes = ['a', 'b']\n"


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEER_TESTBED_DIR", str(tmp_path / "testbeds"))
    monkeypatch.delenv("SEER_TESTBED", raising=False)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def seer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True, text=True,
                          timeout=120, env=env or dict(os.environ))


def test_a_shell_that_exported_seer_testbed_neither_blocks_up_nor_dies_at_down(tiny):
    name = f"td{os.getpid() % 1000}"
    shell_env = dict(os.environ, SEER_TESTBED=name)
    # The user's shell, as the operator's guide suggests: export SEER_TESTBED=NAME.
    shell = subprocess.Popen(["sleep", "300"], env=shell_env)
    try:
        up = seer("testbed", "up", str(tiny), "--name", name, env=shell_env)
        try:
            assert up.returncode == 0, f"up refused because of the user's shell: {up.stderr}"
            assert "already exists" not in up.stderr
        finally:
            down = seer("testbed", "down", name, env=shell_env)
        assert down.returncode == 0, down.stderr
        with pytest.raises(subprocess.TimeoutExpired):  # still there: down did not kill it
            shell.wait(timeout=0.5)
        assert build.testbed_namespaces(name) == []
    finally:
        shell.kill()
        shell.wait()
    assert shell.returncode == -9  # it was alive until this test killed it


def test_down_of_a_leaves_testbed_a_b_alone(tiny):
    name = f"tp{os.getpid() % 1000}"
    neighbour = f"{name}-b"
    assert seer("testbed", "up", str(tiny), "--name", name).returncode == 0
    try:
        up = seer("testbed", "up", str(tiny), "--name", neighbour)
        assert up.returncode == 0, up.stderr
        try:
            theirs = build.testbed_namespaces(neighbour)
            assert len(theirs) == 4
            down = seer("testbed", "down", name)
            assert down.returncode == 0, down.stderr
            assert build.testbed_namespaces(neighbour) == theirs, \
                f"`down {name}` removed namespaces of {neighbour}"
            client = state.read(neighbour)["client"]
            with Experiment(client["controller"], client["certs"], client["identity"]) as exp:
                assert sum(1 for n in exp.nodes() if n["up"]) == 2  # its processes live on
                group = exp.agent("NOOP", "g")
                assert group.set(note="alive").ok and group.command("ECHO").ok
        finally:
            seer("testbed", "down", neighbour)
    finally:
        seer("testbed", "down", name)
    assert build.testbed_namespaces(name) == [] == build.testbed_namespaces(neighbour)


def test_down_all_leaves_alone_a_testbed_whose_state_is_elsewhere(tiny):
    # The code before this promise removed every seer-* namespace on the machine
    # here: run against it, this test would take down real testbeds of others.
    others = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout.split() if n.startswith("seer-")]
    if others:
        pytest.skip(f"other testbeds' namespaces exist ({others[0]}, ...): not ours to risk")
    # Another user's testbed: its namespaces are here, its state folder is theirs.
    # (A namespace this test makes itself, named as a testbed's node would be.)
    foreign = f"seer-fz{os.getpid() % 1000}-x.a"
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        down = seer("testbed", "down", "--all")
        assert down.returncode == 0, down.stderr
        assert foreign in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                         text=True).stdout, "down --all removed it"
        assert "left alone" in down.stdout
    finally:
        subprocess.run(["ip", "netns", "del", foreign])
