"""A silent partition is noticed (issue 12, part 3).

Every packet of one node is dropped, both ways, by nftables inside its own
namespace -- nothing closes the TCP connection, as when a switch or a
firewall in between fails -- for longer than the heartbeat timeout.  The
controller must show the node "unreachable" within 10 s, answer commands
to it at once instead of waiting out their timeout, show it up again
within 2 s of the partition healing, and the node must converge (a SET
sent during the partition is applied).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from e2e import partitioned, running_testbed
from seer.client import Experiment
from seer.testbed import build
from seer.testbed.netns import can_build

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

TOPOLOGY = """
name = "fpart"
[nodes]
a = {}
b = {}
c = {}
[lans.l]
nodes = ["a", "b", "c"]
subnet = "198.18.50.0/24"
"""
def state_of(exp: Experiment, node: str) -> dict:
    return next(n for n in exp.nodes() if n["name"] == node)


def seconds_until(exp: Experiment, node: str, wanted: str, since: float,
                  limit: float) -> float:
    while True:
        node_now = state_of(exp, node)
        # (Before node states existed, a node was only "up" or not.)
        if node_now.get("state", "up" if node_now["up"] else "down") == wanted:
            return time.monotonic() - since
        if time.monotonic() - since > limit:
            pytest.fail(f"{node} not {wanted} after {limit} s: {state_of(exp, node)}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partition")
    topology = folder / "fpart.toml"
    topology.write_text(TOPOLOGY)
    name = f"fp{os.getpid() % 1000}"
    with running_testbed(folder / "state", topology, name) as testbed:
        yield testbed


def test_a_silent_partition_is_noticed_answered_at_once_and_healed(bed):
    c = bed["client"]
    ns = build.node_ns(bed["name"], "b")
    with Experiment(c["controller"], c["certs"], c["identity"]) as exp:
        exp.set("NOOP", "p", {"note": "before"})
        started = time.monotonic()
        with partitioned(ns):
            shown = seconds_until(exp, "b", "unreachable", started, limit=15)
            asked = time.monotonic()
            result = exp.command("NOOP", "p", "ECHO", target="a,b,c", timeout=30, check=False)
            answered = time.monotonic() - asked
            exp.set("NOOP", "p", {"note": "during"}, timeout=2, check=False)
            # Past the daemon's own timeout too: it has dropped its connection.
            time.sleep(max(0.0, 12 - (time.monotonic() - started)))
        healed_at = time.monotonic()
        healed = seconds_until(exp, "b", "up", healed_at, limit=15)
        echo = exp.command("NOOP", "p", "ECHO", target="b", timeout=10)
        print(f"\npartition of b: shown unreachable after {shown:.1f} s; a command to a,b,c "
              f"answered in {answered:.2f} s (b: {result.outcomes['b'].describe()}); "
              f"up again {healed:.2f} s after healing; then ECHO on b: "
              f"{echo.outcomes['b'].result['note']!r}")
    assert shown <= 10
    assert answered < 2.0
    assert result.outcomes["a"].status == result.outcomes["c"].status == "applied"
    assert result.outcomes["b"].status == "unconfirmed"
    assert "unreachable since" in result.outcomes["b"].error
    assert healed <= 2.0
    assert echo.outcomes["b"].result["note"] == "during"  # it converged


def test_the_partitioned_daemon_logged_the_silent_controller(bed):
    log = Path(bed["folder"]) / "logs" / "b.log"
    assert "nothing from the controller for" in log.read_text()
