"""LINK's `loss` is a lossy wire, not a local error (issue 13, section 1).

Dropped on the way out of the node, a packet's loss is reported to the
sending socket (ENOBUFS): `ping -c 100` across a link with loss=20 said 0%
loss while 21 packets were dropped.  Dropped where a lossy wire drops
them, the application sees it: 200 pings across the link, from the node
whose interface is shaped and towards it, each lose between 10% and 30%,
and the sender is never told "No buffer space available".
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from e2e import running_testbed
from seer.client import Experiment
from seer.testbed import build
from seer.testbed.netns import can_build, in_namespace

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

PAIR = "[nodes]\na = {}\nb = {}\n[links.wire]\nnodes = ['a', 'b']\n"


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("linkloss")
    (folder / "pair.toml").write_text(PAIR)
    with running_testbed(folder / "testbeds", folder / "pair.toml",
                         f"ll{os.getpid() % 1000}") as testbed:
        yield testbed


def ping_loss(bed, source: str, target: str) -> tuple[float, str]:
    """Percent loss that ping itself reports over 200 echoes, and what it printed."""
    done = subprocess.run(in_namespace(build.node_ns(bed["name"], source),
                                       ["ping", "-n", "-q", "-c", "200", "-i", "0.01", "-W", "1",
                                        bed["addresses"][target][0]]),
                          capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    found = re.search(r"([\d.]+)% packet loss", output)
    assert found, output
    return float(found.group(1)), output


def test_twenty_percent_loss_is_seen_by_the_application_both_ways(bed):
    c = bed["client"]
    with Experiment(c["controller"], c["certs"], c["identity"]) as exp:
        link = exp.agent("LINK", "lossy")
        link.set(interface="eth1", loss=20, target="b")
        assert link.start(target="b").ok
        try:
            from_b, said_b = ping_loss(bed, "b", "a")  # the case in the issue
            to_b, said_a = ping_loss(bed, "a", "b")
        finally:
            assert link.stop(target="b").ok
        assert 10 <= from_b <= 30, f"ping from the lossy node saw {from_b}% loss:\n{said_b}"
        assert 10 <= to_b <= 30, f"ping towards the lossy node saw {to_b}% loss:\n{said_a}"
        assert "No buffer space" not in said_b + said_a  # the sender was not told
        clean, _ = ping_loss(bed, "b", "a")
        assert clean == 0  # STOP took it away
