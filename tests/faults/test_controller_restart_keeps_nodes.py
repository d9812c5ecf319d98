"""A controller restart never narrows targets silently (issue 11, part 2).

Five daemons register; the controller is SIGKILLed before it writes a
checkpoint that holds them (the checkpoint interval is set to 10 minutes
for this test, so the only checkpoint is the one written at start, before
any node registered); one daemon is stopped (SIGSTOP), so it cannot
reconnect.  After the restart, `n*` must cover every node the controller
knew -- the four that reconnected apply the command, the stopped one is
named "unconfirmed: not reconnected since the controller restarted" -- and
no command is refused for a catalogue that has not arrived again.
"""

from __future__ import annotations

import json
import signal

import pytest

from e2e import lab_for

pytestmark = pytest.mark.e2e

NODES = [f"n{i}" for i in range(1, 6)]


def test_after_a_crash_every_known_node_is_targeted_and_the_absent_one_named(
        tmp_path, certs_dir):
    lab = lab_for(tmp_path, certs_dir, 5, controller_args=["--checkpoint-interval", "600"])
    with lab:
        stopped = lab.daemons["n5"]
        lab.kill_controller(signal.SIGKILL)
        stopped.send_signal(signal.SIGSTOP)
        try:
            lab.start_controller()
            # At once, before any daemon is back: known nodes, known catalogues.
            early = lab.cli("set", "RECORDER", "g", "count=1", "--target", "n*",
                            "--timeout", "8", "--json")
            assert early.returncode != 2, early.stderr  # 2: refused by the controller
            assert sorted(json.loads(early.stdout)["nodes"]) == NODES
            lab.wait_registered(NODES[:4], timeout=30)
            run = lab.cli("start", "RECORDER", "g", "--target", "n*", "--timeout", "4", "--json")
            assert "no targeted node has an agent" not in run.stderr, run.stderr
            result = json.loads(run.stdout)
            outcomes = result["outcomes"]
            counts = {}
            for outcome in outcomes.values():
                counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
            print(f"\nafter the restart, START to n*: {len(result['nodes'])} targeted, {counts}")
            assert sorted(result["nodes"]) == NODES
            assert all(outcomes[n]["status"] == "applied" for n in NODES[:4])
            assert outcomes["n5"] == {"status": "unconfirmed",
                                      "error": "not reconnected since the controller restarted"}
            nodes = json.loads(lab.cli("nodes", "--json").stdout)
            table = nodes.get("table", nodes)  # the node table (its envelope before issue 18)
            states = {n["name"]: n["state"] for n in table["nodes"]}
            assert states["n5"] == "not reconnected"
            # Gone for good: forgotten on purpose, it is no longer targeted.
            forgot = lab.cli("nodes", "--forget", "n5")
            assert forgot.returncode == 0 and "forgot node n5" in forgot.stdout, forgot.stderr
            again = json.loads(lab.cli("start", "RECORDER", "g", "--target", "n*",
                                       "--json").stdout)
            assert sorted(again["nodes"]) == NODES[:4]
        finally:
            stopped.send_signal(signal.SIGCONT)
