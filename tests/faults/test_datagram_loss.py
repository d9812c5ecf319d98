"""Lost datagrams are repaired: 1,000 commands under 20% loss arrive on
every node, none lost, none twice, none out of order (promises 2 and 3).

* On 127.0.0.1, ten daemons drop 20% of the datagrams they receive before
  verification (`seer daemon --rx-drop 0.2`): RECORDER's records on every
  node are 0..999, in order, and every daemon counted its drops.
* On a namespace testbed started with 20% control-network loss (what
  `seer testbed up --control-loss 20%` does: nftables drops a fifth of the
  UDP crossing the control bridge -- the datagrams; repairs come over TLS),
  1,000 SEQ NEXT commands numbered 0..999 -- 900 with 100 in flight, then
  100 alone on the wire, one every 0.3 s, each its own datagram whose loss
  only the PINGs that follow it (0.05 and 0.25 s later) reveal.  Every
  command is applied on every node, and each node's SEQ agent
  (bench/agents/seq.py) received 1,000 with 0 duplicates and 0
  reorderings; the bridge dropped datagrams and the nodes were repaired.
  (The loss hits the nodes' report datagrams too, and a lost one is sent
  again over TLS after 1.5 s: a command waited for alone takes about a
  second on average here, so the last 100 are paced, not waited for one
  by one.)
"""

from __future__ import annotations

import os
import time

import pytest

from bench.common import AGENTS as BENCH_AGENTS
from conftest import TEST_AGENTS
from e2e import eventually, lab_for, node_stats, recorded_numbers, running_testbed
from seer.client import Experiment
from seer.testbed import build
from seer.testbed.netns import can_build

pytestmark = pytest.mark.e2e
REASON = can_build()
COMMANDS = 1000
#: Of them, sent alone on the wire at the end, one every PACE seconds.
SINGLES = 100
PACE = 0.3
TRIO = "[nodes]\na = {}\nb = {}\nc = {}\n[lans.x]\nnodes = ['a', 'b', 'c']\n"


def test_1000_commands_under_20_percent_receive_loss_arrive_in_order_exactly_once(
        tmp_path, certs_dir):
    """Promises 2 and 3, with the loss on the daemons' receive path."""
    lab = lab_for(tmp_path, certs_dir, 10,
                  common_daemon_args=["--agent-dirs", str(TEST_AGENTS), "--rx-drop", "0.2"])
    with lab:
        with lab.experiment() as exp:
            exp.set("RECORDER", "g", {"label": "lossy"})
            started = time.monotonic()
            pending = []
            for i in range(COMMANDS):
                pending.append(exp.submit_command("RECORDER", "g", "RECORD", {"i": i}, timeout=30))
                if len(pending) >= 50:
                    pending.pop(0).result()
            for p in pending:
                p.result()
            elapsed = time.monotonic() - started
        stats = eventually(lambda: node_stats(lab),
                           lambda st: all(s.get("rx_dropped", 0) > 0 for s in st.values()))
    print(f"\n{COMMANDS} commands to 10 daemons at 20% loss in {elapsed:.1f} s")
    for i in range(1, 11):
        assert recorded_numbers(lab, f"n{i}") == list(range(COMMANDS)), f"n{i}"
    for name, s in stats.items():
        assert s.get("rx_dropped", 0) > 0, (name, s)


@pytest.mark.netns
@pytest.mark.skipif(REASON is not None, reason=REASON or "")
def test_1000_commands_under_20_percent_control_network_loss_on_a_testbed(tmp_path):
    """Promises 2 and 3, with the loss on a testbed's control network: none
    lost, duplicated or reordered."""
    (tmp_path / "trio.toml").write_text(TRIO)
    with running_testbed(tmp_path / "testbeds", tmp_path / "trio.toml",
                         f"dl{os.getpid() % 1000}", control_loss=0.2,
                         daemon_args=["--agent-dirs", str(BENCH_AGENTS)]) as bed:
        c = bed["client"]
        with Experiment(c["controller"], c["certs"], c["identity"], timeout=60) as exp:
            seq = exp.agent("SEQ", "loss")
            assert seq.start(timeout=30).ok  # makes the group, counting from scratch
            started = time.monotonic()
            pending, results = [], []
            for i in range(COMMANDS - SINGLES):
                pending.append(seq.submit("NEXT", {"i": i}, timeout=30))
                if len(pending) >= 100:
                    results.append(pending.pop(0).result(check=False))
            results += [p.result(check=False) for p in pending]
            alone = []
            for i in range(COMMANDS - SINGLES, COMMANDS):
                alone.append(seq.submit("NEXT", {"i": i}, timeout=30))
                time.sleep(PACE)  # pacing the sender (nothing is asserted after it)
            results += [p.result(check=False) for p in alone]
            elapsed = time.monotonic() - started
            counters = {node: s.get("counters") or {} for node, s in seq.stats().items()}
            stats = eventually(lambda: {n["name"]: n.get("stats") or {} for n in exp.nodes()},
                               lambda st: sum(s.get("repairs_received", 0)
                                              for s in st.values()) > 0, timeout=30)
        dropped = build.control_loss_counters(bed["name"])
    print(f"\n{COMMANDS} SEQ commands to 3 testbed nodes at 20% control-network loss in "
          f"{elapsed:.1f} s; the bridge dropped {dropped} datagrams; repairs received "
          f"{ {n: s.get('repairs_received', 0) for n, s in stats.items()} }; SEQ {counters}")
    assert all(r.ok for r in results), next(r.problem_summary() for r in results if not r.ok)
    assert len(results) == COMMANDS
    assert set(counters) == {"a", "b", "c"}
    for node, counted in counters.items():
        assert counted.get("received") == COMMANDS, (node, counted)  # none lost
        assert counted.get("duplicates", 0) == 0, (node, counted)
        assert counted.get("reorderings", 0) == 0, (node, counted)
    assert dropped > 0
    assert sum(s.get("repairs_received", 0) for s in stats.values()) > 0
