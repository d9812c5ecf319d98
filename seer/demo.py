"""`make demo`: a real experiment on a testbed in network namespaces.

Brings up examples/topologies/demo.toml -- two client LANs behind a router,
a server LAN behind a 20 Mbit/s bottleneck, an attacker -- then runs the
experiment script examples/ddos_web.py through the controller with `seer
run`: background web traffic, pings, a short bounded UDP flood from spoofed
sources against the server, a capture on the bottleneck.  It prints the
victim's request success rate and RTTs before, during and after the flood,
a per-node summary, and tears everything down -- also on Ctrl-C.

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
NAME = "seerdemo"


def seer(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seer", *args], **kwargs)


def testbed_demo(phase: str) -> int:
    started = time.monotonic()
    print("SEER demo: a testbed in network namespaces (examples/topologies/demo.toml)\n")
    seer("testbed", "down", NAME, capture_output=True)  # remains of an interrupted demo
    results = Path(tempfile.mkdtemp(prefix="seer-demo-results-"))
    try:
        print(f"$ seer testbed up {TOPOLOGY.relative_to(ROOT)} --name {NAME}", flush=True)
        if seer("testbed", "up", str(TOPOLOGY), "--name", NAME).returncode != 0:
            return 1
        env = dict(os.environ, SEER_TESTBED=NAME)
        print(f"\n$ seer run {SCRIPT.relative_to(ROOT)} --phase {phase}", flush=True)
        run = seer("run", "--results", str(results), str(SCRIPT), "--phase", phase, env=env)
        print(f"\n$ seer testbed down {NAME}", flush=True)
        return run.returncode
    except KeyboardInterrupt:
        print("\ninterrupted: taking the testbed down", flush=True)
        return 130
    finally:
        seer("testbed", "down", NAME)
        pcaps = sorted(results.rglob("*.pcap"))
        if pcaps:
            print(f"the capture stays in {pcaps[0]}")
        print(f"demo took {time.monotonic() - started:.0f} s")


def main() -> int:
    why = can_build()
    if why is None:
        return testbed_demo(os.environ.get("SEER_DEMO_PHASE", "8"))
    print(f"no namespace testbed here: {why}\nrunning the loopback demo instead\n")
    from seer.demo_loopback import main as loopback

    return loopback()


if __name__ == "__main__":
    sys.exit(main())
