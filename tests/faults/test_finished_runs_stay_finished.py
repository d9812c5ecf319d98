"""A restarted node never re-runs an experiment that is over (issue 11, part 1).

On the demo testbed the attacker runs a bounded UDP flood (3 s, never
STOPped) and an unbounded HTTP client group.  A capture on the victim's
link sees the flood while it runs -- the positive control that the capture
works -- then the attacker's daemon is restarted (by the testbed's
supervisor).  In a capture of 12 s after the restart there must be no
flood packet at all, while the HTTP group, which was still meant to run,
is resumed by the snapshot and its requests are seen again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import EXAMPLE_TOPOLOGIES
from e2e import running_testbed
from seer.client import Experiment, RequestRefused
from seer.testbed import build, control
from seer.testbed.netns import can_build, in_namespace

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

SPOOFED = "198.18.2.128/25"  # the flood's sources: on the attacker's LAN, owned by no node


class Capture:
    """tcpdump on the victim's link, in its namespace, for as long as the test says."""

    def __init__(self, bed: dict, path: Path) -> None:
        self.path = path
        # The flood's packets, and the SYN of every HTTP request from the attacker.
        (attacker,) = bed["addresses"]["attacker"]
        pcap_filter = (f"(udp and src net {SPOOFED}) or (tcp dst port 8080 and src host "
                       f"{attacker} and tcp[tcpflags] & tcp-syn != 0)")
        self.process = subprocess.Popen(
            in_namespace(build.node_ns(bed["name"], "server1"),
                         ["tcpdump", "-n", "-U", "-Z", "root", "-i", "eth1", "-w", str(path),
                          pcap_filter]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # tcpdump says "listening on" once its filter is in place.
        said = self.process.stderr.readline().decode(errors="replace")
        assert "listening on" in said, said

    def stop(self) -> tuple[int, int]:
        """(flood packets, HTTP requests) captured."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=10)
        lines = subprocess.run(["tcpdump", "-n", "-r", str(self.path)], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        flood = sum(1 for line in lines if " UDP," in line)
        return flood, len(lines) - flood


def run_of(exp: Experiment, node: str, agent: str, group: str) -> str | None:
    try:
        groups = exp.connection.request({"type": "GROUPS", "target": node}).get("groups")
    except RequestRefused:
        return None  # a controller without GROUPS cannot say
    return next((g["run"] for g in groups[node] if (g["agent"], g["group"]) == (agent, group)),
                None)


def wait_for(condition, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with running_testbed(tmp_path_factory.mktemp("finished"), EXAMPLE_TOPOLOGIES / "demo.toml",
                         f"fin{os.getpid() % 1000}") as testbed:
        yield testbed


def test_a_finished_flood_stays_finished_and_a_running_group_resumes(bed, tmp_path):
    c = bed["client"]
    with Experiment(c["controller"], c["certs"], c["identity"]) as exp:
        exp.subscribe()
        web = exp.agent("HTTP", "web")
        web.set(servers="server1", clients="attacker", think="minmax(0.2,0.4)",
                sizes="constant(2000)")
        web.start(target="attacker,server1")
        before = Capture(bed, tmp_path / "before.pcap")
        flood = exp.agent("FLOODER", "f")
        flood.set(targets="server1", type="udp", rate=300, duration=3, sources=SPOOFED)
        flood.start(target="attacker")
        exp.wait_for_event("flood_done", nodes=["attacker"], agent="FLOODER", group="f",
                           timeout=20)
        wait_for(lambda: run_of(exp, "attacker", "FLOODER", "f") in ("finished", None),
                 "the controller recording the flood's end", 10)
        flood_before, http_before = before.stop()

        registered = next(n for n in exp.nodes() if n["name"] == "attacker")["registered_at"]
        control.request(Path(bed["folder"]), "restart", "attacker")
        wait_for(lambda: any(n["name"] == "attacker" and n["up"] and n["registered_at"] > registered
                             for n in exp.nodes()), "the attacker re-registering", 30)
        after = Capture(bed, tmp_path / "after.pcap")
        time.sleep(12)  # the capture window itself: what the restarted node sends in 12 s
        flood_after, http_after = after.stop()
        attacker = next(n for n in exp.nodes() if n["name"] == "attacker")
        web.stop()
    shown = subprocess.run([sys.executable, "-m", "seer", "nodes"], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, SEER_TESTBED=bed["name"]))
    print(f"\nvictim's link: before the restart {flood_before} flood packets and "
          f"{http_before} HTTP requests from the attacker; in 12 s after it "
          f"{flood_after} flood packets and {http_after} HTTP requests; "
          f"the snapshot: {attacker.get('snapshot')}")
    assert flood_before > 500 and http_before > 0  # the capture sees both
    assert flood_after == 0  # the finished flood did not run again
    assert http_after > 0  # the unbounded group resumed
    snapshot = attacker["snapshot"]
    assert "HTTP web" in snapshot["resumed"]
    (not_resumed,) = [n for n in snapshot["not_resumed"] if n["group"] == "FLOODER f"]
    assert not_resumed["run"] == "finished" and "ended on this node" in not_resumed["why"]
    assert "resumed HTTP web; not FLOODER f: its run ended on this node" in shown.stdout, \
        shown.stdout + shown.stderr
