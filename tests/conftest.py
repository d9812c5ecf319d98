"""What several test modules share: the private testbed state, the
experiment's certificates, a fake process reactor (the doubles themselves
live in seer.testing), a check that no test leaves timers on the global
reactor, and the paths and topologies more than one module reads.

Test modules import from here (or from the helpers in e2e.py and
procfs.py), never from one another."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seer.protocol import certs

TESTS = Path(__file__).resolve().parent
TEST_AGENTS = TESTS / "agents"
#: The shipped example topologies.
EXAMPLE_TOPOLOGIES = TESTS.parent / "examples" / "topologies"
#: Two hosts with two routers between them, a link with its own subnet, a shaped LAN.
CHAIN_TOPOLOGY = """
name = "chain"
[nodes.r1]
router = true
[nodes.r2]
router = true
[nodes]
a = {}
b = {}
[lans.left]
nodes = ["a", "r1"]
[links.middle]
nodes = ["r1", "r2"]
subnet = "198.18.50.0/30"
[lans.right]
nodes = ["r2", "b"]
bandwidth = "10mbit"
loss = "2%"
"""


@pytest.fixture(scope="session", autouse=True)
def private_testbed_state(tmp_path_factory):
    """Tests never see (or touch) testbeds running on this machine outside them."""
    os.environ["SEER_TESTBED_DIR"] = str(tmp_path_factory.mktemp("testbed-state"))
    for name in ("SEER_TESTBED", "SEER_CONTROLLER", "SEER_CERTS", "SEER_IDENTITY"):
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory) -> Path:
    """One experiment CA with nodes n1..n30, two experimenters."""
    root = tmp_path_factory.mktemp("certs")
    certs.init(root, [f"n{i}" for i in range(1, 31)], ["alice", "bob"])
    return root


@pytest.fixture(scope="session")
def foreign_certs_dir(tmp_path_factory) -> Path:
    """Another experiment's CA, with a node called n1 and an experimenter alice."""
    root = tmp_path_factory.mktemp("foreign-certs")
    certs.init(root, ["n1"], ["alice"], experiment="other")
    return root


@pytest.fixture
def process_reactor():
    """A FakeProcessReactor: a clock, memory TCP, multicast and fake spawns."""
    from seer.testing import FakeProcessReactor

    return FakeProcessReactor()


@pytest.fixture(autouse=True)
def global_reactor_left_clean():
    """Fail a test that leaves timers on the global reactor, as trial would."""
    from twisted.internet import reactor

    before = set(reactor.getDelayedCalls())
    yield
    leftover = [c for c in reactor.getDelayedCalls() if c not in before and c.active()]
    for call in leftover:
        call.cancel()
    assert not leftover, f"test left delayed calls on the reactor: {leftover}"


def pytest_collection_modifyitems(config, items):
    # End-to-end tests run after unit tests, so a quick failure shows first.
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture
def lab(tmp_path, certs_dir):
    """A controller on fakes (tests/controller_lab.py), nodes n1 n2 n3 n9 expected."""
    from controller_lab import Lab, make_controller
    from seer.testing import FakeReactor

    reactor = FakeReactor()
    reactor.advance(1_000_000)
    c = make_controller(reactor, certs_dir, tmp_path / "state", nodefile=["n1", "n2", "n3", "n9"])
    yield Lab(c, reactor)
    if c.running:
        c.stopService()
