"""The local testbed in network namespaces, for real (root needed)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys

import pytest

from seer.client import Experiment
from seer.testbed import build, pids, runner, state
from seer.testbed.netns import can_build, in_namespace
from seer.testbed.topology import load_topology, parse_topology

from conftest import CHAIN_TOPOLOGY as CHAIN, EXAMPLE_TOPOLOGIES as EXAMPLES
from e2e import eventually
from procfs import running

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    monkeypatch.setenv("SEER_TESTBED_DIR", str(tmp_path / "testbeds"))
    monkeypatch.delenv("SEER_CONTROLLER", raising=False)
    monkeypatch.delenv("SEER_TESTBED", raising=False)


def host_network() -> tuple[str, str]:
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    return links, routes


def unique(name: str) -> str:
    return f"{name}{os.getpid() % 1000}"


def client_of(testbed: dict) -> Experiment:
    c = testbed["client"]
    return Experiment(c["controller"], c["certs"], c["identity"])


def seer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ))


def test_up_routes_every_pair_and_down_leaves_nothing():
    before = host_network()
    topology = parse_topology(CHAIN, name=unique("chain"))
    testbed = runner.up(topology)
    try:
        name = topology.name
        assert len(build.testbed_namespaces(name)) == 6
        for a, b in itertools.permutations(topology.nodes, 2):
            target = topology.address_of(b)[-1]
            # Three tries: the chain's right LAN drops 2% at each of its members.
            ping = subprocess.run(in_namespace(build.node_ns(name, a),
                                               ["ping", "-c3", "-i0.2", "-W2", target]),
                                  capture_output=True, text=True)
            assert ping.returncode == 0, f"{a} cannot reach {b} at {target}"
        with client_of(testbed) as exp:
            group = exp.agent("NOOP", "g")
            group.set(note="bridged")
            result = group.command("ECHO")  # multicast over the control bridge
            nodes = {n["name"]: n for n in exp.nodes()}
        assert sorted(result.outcomes) == sorted(topology.nodes)
        assert nodes["a"]["addresses"] == ["198.18.0.1"]  # discovered in its namespace
    finally:
        runner.down(topology.name)
    assert build.testbed_namespaces(topology.name) == []
    assert runner.processes(topology.name) == []
    assert host_network() == before
    assert runner.down(topology.name) == {"processes": 0, "namespaces": 0}


def test_the_cli_in_the_same_shell_reaches_the_testbed_and_down_works_after_a_crash():
    name = unique("cli")
    run = seer("testbed", "up", str(EXAMPLES / "demo.toml"), "--name", name)
    assert run.returncode == 0, run.stdout + run.stderr
    try:
        assert f"testbed {name} is up: 6 nodes registered" in run.stdout
        nodes = seer("nodes")
        assert nodes.returncode == 0 and "6 of 6 node(s) up" in nodes.stdout, nodes.stderr
        # A name the testbed does not have is said at once, not waited out.
        typo = seer("nodes", "--wait", "clinet1", "--timeout", "60")
        assert typo.returncode == 2, typo.stdout + typo.stderr
        assert "no such node: 'clinet1' (nearest: 'client1')" in typo.stderr
        assert seer("start", "NOOP", "x", "--target", "@role=router").returncode == 0
        run = seer("testbed", "exec", "client1", "--", "ping", "-c1", "-W2", "198.18.10.2")
        assert run.returncode == 0, run.stdout + run.stderr
        # A crash: the supervisor first (or it would restart the others), then
        # every process it ran, killed; the state is left behind.
        found = runner.processes(name)
        assert {"supervisor", "controller", "relay", "client1", "router"} <= \
            {r.name for r in found}  # (and whatever short-lived children they have)
        killed = [r.pid for r in found]
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        assert eventually(lambda: [pid for pid in killed if running(pid)], lambda alive: not alive,
                          timeout=5, interval=0.05) == []
    finally:
        down = seer("testbed", "down", name)
    assert down.returncode == 0 and f"testbed {name} is down" in down.stdout
    assert build.testbed_namespaces(name) == [] and runner.processes(name) == []
    again = seer("testbed", "down", name)  # twice in a row: nothing left to do, and it says so
    assert again.returncode == 2 and f"no testbed called {name!r}" in again.stderr


def test_two_testbeds_at_once_stay_apart():
    first = load_topology(EXAMPLES / "demo.toml", unique("one"))
    second = load_topology(EXAMPLES / "demo.toml", unique("two"))
    a = runner.up(first)
    try:
        b = runner.up(second)
        try:
            with client_of(a) as exp:
                exp.agent("NOOP", "only-a").start()
                serial_a = exp.status()["serial"]
            with client_of(b) as exp:
                assert exp.status()["serial"] == 0 < serial_a
            assert set(build.testbed_namespaces(first.name)).isdisjoint(
                build.testbed_namespaces(second.name))
        finally:
            runner.down(second.name)
        with client_of(a) as exp:  # the first is untouched by the second's down
            only = exp.agent("NOOP", "only-a")
            assert only.set(note="a").ok and only.command("ECHO").ok
    finally:
        runner.down(first.name)


def test_twenty_nodes_register(capsys):
    topology = load_topology(EXAMPLES / "star20.toml", unique("star"))
    testbed = runner.up(topology)
    try:
        with capsys.disabled():
            print(f"\n20-node testbed: every daemon registered {testbed['registered_in']} s "
                  "after `up` started")
        with client_of(testbed) as exp:
            assert sum(1 for n in exp.nodes() if n["up"]) == 20
    finally:
        runner.down(topology.name)


def test_delay_without_netem_is_a_clear_error_and_nothing_is_left():
    topology = parse_topology("[nodes]\na = {}\nb = {}\n[lans.x]\nnodes = ['a', 'b']\n"
                              "delay = '10ms'\n",
                              name=unique("delay"))
    try:
        runner.up(topology)
    except build.BuildError as e:
        assert "netem" in str(e) and "remove `delay`" in str(e)
    else:  # a kernel with netem: then it simply works
        runner.down(topology.name)
    assert build.testbed_namespaces(topology.name) == []


def test_a_name_in_use_is_refused():
    topology = parse_topology(CHAIN, name=unique("dup"))
    runner.up(topology)
    try:
        with pytest.raises(runner.UpError, match="already exists"):
            runner.up(topology)
    finally:
        runner.down(topology.name)
    assert state.known() == []


def test_what_a_killed_daemon_left_behind_goes_down_with_the_testbed(tmp_path):
    topology = parse_topology("[nodes]\na = {}\nb = {}\n[lans.x]\nnodes = ['a', 'b']\n",
                              name=unique("orph"))
    testbed = runner.up(topology)
    try:
        with client_of(testbed) as exp:
            assert exp.agent("TCPDUMP", "cap").start(target="a").ok
        daemon = next(r for r in runner.processes(topology.name) if r.name == "a")
        supervisor = next(r for r in runner.processes(topology.name) if r.name == "supervisor")
        capture = eventually(lambda: pids.descendants([daemon.pid]), bool, timeout=10,
                             interval=0.1)
        assert capture, "TCPDUMP started no process"
        os.kill(daemon.pid, signal.SIGKILL)
        # Adopted by the supervisor (the child subreaper), not by init.
        assert eventually(lambda: parent_of(capture[0].pid), lambda p: p == supervisor.pid,
                          timeout=5, interval=0.05) == supervisor.pid
    finally:
        runner.down(topology.name)
    assert not pids.is_running(capture[0])


def parent_of(pid: int) -> int | None:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None
