"""The testbed's commands as a user meets them (issue 18's testbed items).

`seer testbed loss` and `exec` honour SEER_TESTBED like the client commands;
`down` of a name that does not exist says so and exits non-zero; `status
--json` and `inspect --json` give the processes with their PIDs, nodes,
addresses, links and namespaces; `check` pings every pair that should reach
each other and exits non-zero, naming the pair, when one cannot; and the
help says 0%, not 0%%.

One testbed (a router between two LANs) is shared by the module's tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from e2e import eventually, running_testbed
from seer.testbed import build, state
from seer.testbed.netns import can_build, in_namespace, run as run_tool

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

ROUTED = """
[nodes.r]
router = true
[nodes]
a = {}
b = {}
[lans.left]
nodes = ["r", "a"]
[links.right]
nodes = ["r", "b"]
bandwidth = "10mbit"
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clitb")
    (folder / "routed.toml").write_text(ROUTED)
    with running_testbed(folder / "testbeds", folder / "routed.toml",
                         f"tc{os.getpid() % 1000}") as testbed:
        yield testbed


def seer(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, **env))


@pytest.fixture
def second_testbed(bed):
    """Another testbed's state beside ours, so that "the only testbed" is no answer."""
    ghost = state.directory("ghost")
    ghost.mkdir(parents=True)
    state.write("ghost", {"name": "ghost", "up": False})
    try:
        yield "ghost"
    finally:
        (ghost / state.STATE_FILE).unlink()
        ghost.rmdir()


def test_exec_and_loss_honour_seer_testbed(bed, second_testbed):
    name = bed["name"]
    ambiguous = seer("testbed", "exec", "a", "--", "true")
    assert ambiguous.returncode == 2 and "several testbeds" in ambiguous.stderr
    ran = seer("testbed", "exec", "a", "--", "ip", "-o", "addr", "show", "eth1",
               SEER_TESTBED=name)
    assert ran.returncode == 0, ran.stderr
    assert bed["addresses"]["a"][0] in ran.stdout
    lossy = seer("testbed", "loss", "5%", SEER_TESTBED=name)
    assert lossy.returncode == 0, lossy.stderr
    assert f"testbed {name}: 5.0%" in lossy.stdout
    assert build.control_loss_counters(name) >= 0
    assert seer("testbed", "loss", "0%", SEER_TESTBED=name).returncode == 0
    wrong = seer("testbed", "exec", "a", "--", "true", SEER_TESTBED="nosuchtb")
    assert wrong.returncode == 2 and "'nosuchtb'" in wrong.stderr and "SEER_TESTBED" in wrong.stderr


def test_down_of_an_unknown_testbed_says_so_and_fails(bed):
    down = seer("testbed", "down", "nosuchtb")
    assert down.returncode != 0
    assert "no testbed called 'nosuchtb'" in down.stderr and bed["name"] in down.stderr
    assert "is down" not in down.stdout
    assert build.testbed_namespaces(bed["name"])  # and nothing was touched


def test_status_json_names_every_process_with_its_pid_and_state(bed):
    status = seer("testbed", "status", bed["name"], "--json")
    assert status.returncode == 0, status.stderr
    [testbed] = json.loads(status.stdout)["testbeds"]
    assert testbed["up"] and testbed["supervisor"]["running"]
    assert set(testbed["processes"]) == {"controller", "relay", "r", "a", "b"}
    for name, process in testbed["processes"].items():
        assert process["state"] == "running" and process["pid"] > 0, name
        assert os.path.exists(f"/proc/{process['pid']}")
    assert {n for n, node in testbed["nodes"].items() if node["up"]} == {"r", "a", "b"}


def test_inspect_json_gives_nodes_addresses_links_namespaces_and_processes(bed):
    run = seer("testbed", "inspect", "--testbed", bed["name"], "--json")
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    nodes = {n["name"]: n for n in found["nodes"]}
    assert set(nodes) == {"r", "a", "b"} and nodes["r"]["router"]
    assert nodes["a"]["namespace"] in found["namespaces"]
    assert [i["address"].split("/")[0] for i in nodes["b"]["interfaces"]] == bed["addresses"]["b"]
    assert nodes["a"]["routes"]  # a reaches b's link through r
    assert all(n["process"]["pid"] > 0 and n["process"]["state"] == "running"
               for n in nodes.values())
    networks = {n["name"]: n for n in found["networks"]}
    assert networks["right"]["kind"] == "link" and networks["right"]["bandwidth"] == "10mbit"
    assert {m["node"] for m in networks["left"]["members"]} == {"r", "a"}
    assert found["controller"]["process"]["pid"] > 0 and found["controller"]["relay"]
    assert len(found["namespaces"]) == 5  # three nodes, the switch, the controller
    text = seer("testbed", "inspect", "--testbed", bed["name"])
    assert text.returncode == 0 and nodes["a"]["namespace"] in text.stdout


def test_check_pings_every_pair_and_fails_naming_the_pair_that_cannot(bed):
    name = bed["name"]
    good = seer("testbed", "check", "--testbed", name)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "6 of 6 pairs reach each other" in good.stdout
    b = build.node_ns(name, "b")
    run_tool(in_namespace(b, ["ip", "link", "set", "eth1", "down"]))
    try:
        bad = seer("testbed", "check", "--testbed", name, "--json")
        assert bad.returncode == 1
        failed = {(p["from"], p["to"]) for p in json.loads(bad.stdout)["pairs"]
                  if p["expected"] and not p["reached"]}
        assert failed == {("r", "b"), ("a", "b"), ("b", "r"), ("b", "a")}
        text = seer("testbed", "check", "--testbed", name)
        assert text.returncode == 1 and "a cannot reach b at" in text.stdout
    finally:
        run_tool(in_namespace(b, ["ip", "link", "set", "eth1", "up"]))
        eventually(lambda: run_tool(in_namespace(b, ["ip", "-o", "link", "show", "eth1"])),
                   lambda out: "LOWER_UP" in out, timeout=10, interval=0.1)


def test_the_help_says_percent_once():
    help_text = seer("testbed", "loss", "--help").stdout
    assert "%%" not in help_text and "0% to stop" in help_text
    up_help = seer("testbed", "up", "--help").stdout
    assert "%%" not in up_help and "20%" in up_help
