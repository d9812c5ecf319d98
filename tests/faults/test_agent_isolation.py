"""Agents cannot stall or kill their node (issue 12, part 2), end to end.

A daemon on 127.0.0.1 loads FAULTY from an agent folder: a third-party
agent, so each of its groups runs in a worker process of its own.

* A FAULTY handler blocks for 10 s; meanwhile a NOOP ECHO (a shipped agent,
  run inside the daemon) and a FAULTY command to another group must answer
  at once -- the delay each saw is printed.
* A FAULTY handler calls ``os._exit(3)``, or segfaults through ctypes (in
  the worker: the only process it can crash is the one this test's daemon
  started for it).  Its outcome must say ``agent worker for FAULTY died
  (exit code 3)`` or ``(signal 11, SIGSEGV)``, the daemon must stay up, and
  the next command to the group must work -- in a new worker, with the
  group's variable and its run (START again) brought back.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from e2e import eventually, lab_for

pytestmark = pytest.mark.e2e

FAULT_AGENTS = Path(__file__).resolve().parent / "agents"
BLOCK = 10.0
#: What "at once" allows on a loaded two-core machine (an idle one answers in ~20 ms).
PROMPT = 1.0


@pytest.fixture
def lab(tmp_path, certs_dir):
    lab = lab_for(tmp_path, certs_dir, 1,
                  common_daemon_args=["--agent-dirs", str(FAULT_AGENTS)])
    with lab:
        yield lab


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_handler_blocking_10_s_delays_no_other_group_on_its_node(lab):
    with lab.experiment() as exp:
        exp.set("NOOP", "fast", {"note": "here"})
        exp.set("FAULTY", "other", {"label": "other"})  # its worker is up before the block
        exp.set("FAULTY", "slow", {"label": "slow"})
        blocking = exp.submit_command("FAULTY", "slow", "BLOCK", {"seconds": BLOCK},
                                      timeout=BLOCK + 15)
        marker = lab.workdir / "nodes/n1/FAULTY-slow/blocking"
        assert eventually(marker.exists, bool, timeout=10, interval=0.05), "it never blocked"
        noop, noop_delay = timed(lambda: exp.command("NOOP", "fast", "ECHO", timeout=BLOCK + 5,
                                                     check=False))
        other, other_delay = timed(lambda: exp.command("FAULTY", "other", "OK",
                                                       timeout=BLOCK + 5, check=False))
        blocked_for = time.time() - float(marker.read_text())
        print(f"\nwhile a handler blocked for {BLOCK:g} s: NOOP ECHO (inline) answered in "
              f"{noop_delay * 1000:.0f} ms, FAULTY OK to another group (isolated) in "
              f"{other_delay * 1000:.0f} ms; the handler had blocked {blocked_for:.2f} s by then")
        assert noop.outcomes["n1"].status == "applied", noop.problem_summary()
        assert other.outcomes["n1"].result["label"] == "other", other.problem_summary()
        assert noop_delay < PROMPT and other_delay < PROMPT, (noop_delay, other_delay)
        assert blocked_for < BLOCK - 1, "the block was over before the other groups were asked"
        done = blocking.result(check=False)
        assert done.outcomes["n1"].status == "applied" and done.outcomes["n1"].result == {
            "blocked": BLOCK}


@pytest.mark.parametrize("command, died", [
    ("OSEXIT", "agent worker for FAULTY died (exit code 3)"),
    ("SEGV", "agent worker for FAULTY died (signal 11, SIGSEGV)"),
])
def test_a_handler_that_kills_its_process_takes_down_its_worker_only(lab, command, died):
    with lab.experiment() as exp:
        exp.set("FAULTY", "g", {"label": "kept"})
        exp.command("FAULTY", "g", "START", timeout=10)
        before = exp.command("FAULTY", "g", "OK", timeout=10).outcomes["n1"].result
        crashed = exp.command("FAULTY", "g", command, {"code": 3}, timeout=10, check=False)
        outcome = crashed.outcomes["n1"]
        assert outcome.status == "failed" and outcome.error.startswith(died), \
            crashed.problem_summary()
        assert lab.daemons["n1"].poll() is None, "the daemon died"
        after = exp.command("FAULTY", "g", "OK", timeout=10, check=False)
        assert after.outcomes["n1"].status == "applied", after.problem_summary()
        now = after.outcomes["n1"].result
        # A new worker, with the group's variable and its run brought back.
        assert now["pid"] != before["pid"] and now["label"] == "kept" and now["starts"] == 1
        assert exp.command("NOOP", "n", "START", timeout=10).ok  # and the node is fine
