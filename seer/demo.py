"""`make demo`: a real experiment on a testbed in network namespaces.

Brings up examples/topologies/demo.toml -- two client LANs behind a router,
a server LAN behind a 20 Mbit/s bottleneck, an attacker -- then runs the
experiment script examples/ddos_web.py through the controller with `seer
run`: background web traffic, pings, a short bounded UDP flood from spoofed
sources against the server, a capture on the bottleneck.  It prints the
victim's request success rate and RTTs before, during and after the flood,
a per-node summary, and tears everything down -- also on Ctrl-C.  Its
last line is where the run's report is: the plots `seer run` drew of the
run's record, the flood's phase shaded on the bottleneck's.

Each run brings up a testbed of its own, ``demo-<pid>``: on a shared
machine another user's demo (or any other testbed) is never taken down.
Remains of an earlier demo that was killed outright are pointed out, not
removed: only the user can tell whose they are.

Where namespaces cannot be made (no root), it says why and runs the
loopback demo instead: a controller and five daemons on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seer.testbed.netns import can_build

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "examples" / "topologies" / "demo.toml"
SCRIPT = ROOT / "examples" / "ddos_web.py"
#: Every run's testbed is "demo-<pid>"; this is what they have in common.
PREFIX = "demo-"


def seer(*args: str, **kwargs) -> int:
    """Run `seer ARGS` and return its exit code.

    Ctrl-C reaches the child too (same process group), and it winds down by
    itself -- `testbed up` takes down what it made, `run` cancels the script
    -- so the demo waits for it, then passes the interrupt on.  (subprocess.run
    would SIGKILL it a quarter of a second later, half-way through.)
    """
    process = subprocess.Popen([sys.executable, "-m", "seer", *args], **kwargs)
    interrupted = False
    while True:
        try:
            code = process.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
    return code


def earlier_remains() -> list[str]:
    """Demo testbeds whose supervisor is gone: a demo that was killed outright."""
    from seer.testbed import pids, runner, state

    remains = []
    for name in runner.known():
        record = pids.Record.from_json((state.read(name) or {}).get("supervisor"))
        if name.startswith(PREFIX) and (record is None or not pids.is_running(record)):
            remains.append(name)
    return remains


def testbed_demo(phase: str) -> int:
    started = time.monotonic()
    name = f"{PREFIX}{os.getpid()}"  # at most 12 characters: pid_max is below 10**7
    print("SEER demo: a testbed in network namespaces (examples/topologies/demo.toml)\n")
    for remains in earlier_remains():
        print(f"(remains of an earlier demo: testbed {remains}; "
              f"`seer testbed down {remains}` removes them)")
    results = Path(tempfile.mkdtemp(prefix="seer-demo-results-"))
    made = False
    try:
        print(f"$ seer testbed up {TOPOLOGY.relative_to(ROOT)} --name {name}", flush=True)
        made = True  # from here on, whatever `up` got to make is ours to take down
        if seer("testbed", "up", str(TOPOLOGY), "--name", name) != 0:
            return 1
        env = dict(os.environ, SEER_TESTBED=name)
        print(f"\n$ seer run {SCRIPT.relative_to(ROOT)} --phase {phase}", flush=True)
        code = seer("run", "--results", str(results), str(SCRIPT), "--phase", phase, env=env)
        print(f"\n$ seer testbed down {name}", flush=True)
        return code
    except KeyboardInterrupt:
        print("\ninterrupted: taking the testbed down", flush=True)
        return 130
    finally:
        if made:
            _down(name)
        pcaps = sorted(results.rglob("*.pcap"))
        if pcaps:
            print(f"the capture stays in {pcaps[0]}")
        if (results / "stats.csv").exists():
            print(f"the run record stays in {results}: stats.csv (every second's rates per "
                  "link, node and agent group), commands.csv (every command, its outcomes) "
                  "and phases.csv (before, during, after)")
        print(f"demo took {time.monotonic() - started:.0f} s")
        report = results / "report" / "index.html"
        if report.exists():  # seer run drew it when the results came back
            print(f"the report (plots of every link and agent group, the phases shaded): "
                  f"{report}")


def _down(name: str) -> None:
    """Take the demo's own testbed down, even through another Ctrl-C."""
    from seer.testbed import runner

    for _ in range(3):
        try:
            if runner.exists(name):
                seer("testbed", "down", name)
            return
        except KeyboardInterrupt:
            print("(still taking the testbed down)", flush=True)


def main() -> int:
    why = can_build()
    if why is None:
        return testbed_demo(os.environ.get("SEER_DEMO_PHASE", "8"))
    print(f"no namespace testbed here: {why}\nrunning the loopback demo instead\n")
    from seer.demo_loopback import main as loopback

    return loopback()


if __name__ == "__main__":
    sys.exit(main())
