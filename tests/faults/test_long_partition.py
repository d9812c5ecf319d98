"""A partition longer than the retire window ends in a snapshot (promise 2).

A three-node testbed whose controller retires sent datagrams after 10 s
(`--retire-after 10`, shortened for this test from 120 s so that the
partition need not last two minutes).  Node b is cut off -- every packet
in and out of its namespace dropped -- and, before the controller notices
(its heartbeat timeout is 6 s), an event (RECORDER RECORD) and a state
message (SET) go to every node.  The partition lasts until the controller
has retired both: b can no longer be repaired.  Healed, b reconnects and
converges by snapshot: its outcome for the event it missed is `skipped`
(events are not replayed), for the SET `applied` with `via: snapshot`;
a and c applied both at once; and b's next command runs with the
variable the SET gave.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from conftest import TEST_AGENTS
from e2e import eventually, partitioned, running_testbed
from seer.client import Experiment
from seer.testbed import build
from seer.testbed.netns import can_build

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

TRIO = "[nodes]\na = {}\nb = {}\nc = {}\n[lans.x]\nnodes = ['a', 'b', 'c']\n"
RETIRE_AFTER = 10


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("longpart")
    (folder / "trio.toml").write_text(TRIO)
    with running_testbed(folder / "testbeds", folder / "trio.toml", f"lp{os.getpid() % 1000}",
                         controller_args=["--retire-after", str(RETIRE_AFTER)],
                         daemon_args=["--agent-dirs", str(TEST_AGENTS)]) as testbed:
        yield testbed


def recorded(bed, node: str) -> list[dict]:
    path = os.path.join(bed["folder"], "nodes", node, "RECORDER-p", "records.jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path).read().splitlines()]


def test_a_partition_longer_than_the_retire_window_converges_by_snapshot(bed):
    """Promise 2: a node too far behind for repairs converges by snapshot,
    and is told which events it missed."""
    c = bed["client"]
    with Experiment(c["controller"], c["certs"], c["identity"], timeout=60) as exp:
        exp.set("RECORDER", "p", {"label": "before"})
        assert exp.command("RECORDER", "p", "RECORD", {"i": 1}).ok
        serial_before = exp.status()["serial"]
        with partitioned(build.node_ns(bed["name"], "b")):
            cut_at = time.monotonic()
            event = exp.submit_command("RECORDER", "p", "RECORD", {"i": 2}, timeout=120)
            state = exp.submit_set("RECORDER", "p", {"label": "during"}, timeout=120)
            sent = eventually(lambda: exp.status()["serial"], lambda s: s >= serial_before + 2,
                              timeout=5, interval=0.05)
            assert time.monotonic() - cut_at < 6, "sent after the controller could notice"
            # Until the controller can no longer repair them.
            window = eventually(lambda: exp.status(), lambda st: st["oldest"] is None
                                or st["oldest"] > sent, timeout=RETIRE_AFTER + 20, interval=0.5)
            cut_for = time.monotonic() - cut_at
        healed_at = time.monotonic()
        event, state = event.result(check=False), state.result(check=False)
        converged = time.monotonic() - healed_at
        after = exp.command("RECORDER", "p", "RECORD", {"i": 3}, timeout=30)
        snapshot = next(n for n in exp.nodes() if n["name"] == "b").get("snapshot")
    print(f"\nb cut off for {cut_for:.1f} s (the window then began at {window['oldest']}, "
          f"past serial {sent}); {converged:.1f} s after healing: RECORD on b "
          f"{event.outcomes['b'].describe()}, SET on b {state.outcomes['b'].describe()}; "
          f"snapshot {snapshot}")
    assert cut_for > RETIRE_AFTER
    for node in ("a", "c"):
        assert event.outcomes[node].status == state.outcomes[node].status == "applied"
    assert event.outcomes["b"].status == "skipped"
    assert "events are not replayed" in event.outcomes["b"].error
    assert state.outcomes["b"].status == "applied"
    assert state.outcomes["b"].result == {"via": "snapshot"}
    assert after.ok, after.problem_summary()
    assert [r["i"] for r in recorded(bed, "a")] == [1, 2, 3] == [r["i"] for r in
                                                                 recorded(bed, "c")]
    b = recorded(bed, "b")
    assert [r["i"] for r in b] == [1, 3]  # the event it missed was not run late
    assert b[-1]["label"] == "during"  # the snapshot brought the SET
