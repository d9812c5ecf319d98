"""The loopback demo: a controller and five daemons on 127.0.0.1, driven by the CLI.

Starts real processes, waits until every daemon has registered, runs a few
`seer` commands -- a SET, a targeted command, a START, a refused request --
printing each with its per-node outcome, and stops everything (also on
Ctrl-C).  Exits non-zero if anything did not go as shown.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time

from seer.localrun import LocalExperiment

NODES = [f"node{i}" for i in range(1, 6)]

# (arguments, expected exit code, what it shows)
STEPS = [
    (["nodes"], 0, "the node table: every daemon registered"),
    (["set", "NOOP", "demo", "note=hello from SEER", "note@node5=node5 says hi"], 0,
     "a SET with a per-node value, applied on all five"),
    (["command", "NOOP", "demo", "ECHO", "--target", "node[1-3]"], 0,
     "a command to three nodes by wildcard; each answers with its note"),
    (["start", "NOOP", "demo", "--after", "0.5"], 0,
     "a START scheduled half a second ahead: every node acts at the same moment"),
    (["set", "NOOP", "demo", "colour=blue"], 2,
     "a bad request: refused by the controller, nothing sent"),
    (["start", "NOOP", "demo", "--target", "router*"], 2,
     "a target that matches no node: refused, nothing sent"),
    (["stop", "NOOP", "demo"], 0, "STOP everywhere"),
]


def main() -> int:
    print(f"SEER demo: a controller and {len(NODES)} daemons on 127.0.0.1 (multicast TTL 1)")
    with tempfile.TemporaryDirectory(prefix="seer-demo-") as workdir:
        lab = LocalExperiment(workdir, NODES)
        started = time.monotonic()
        try:
            with lab:
                print(f"all {len(NODES)} daemons registered in {time.monotonic() - started:.1f} s "
                      f"(logs in {workdir})\n")
                failures = 0
                for args, expected, what in STEPS:
                    print(f"# {what}")
                    print(f"$ seer {shlex.join(args)}")
                    run = lab.cli(*args)
                    output = (run.stdout + run.stderr).rstrip()
                    print(output)
                    mark = "ok" if run.returncode == expected else "UNEXPECTED"
                    print(f"(exit {run.returncode}: {mark})\n")
                    failures += run.returncode != expected
                print("stopping every process...")
        except KeyboardInterrupt:
            print("\ninterrupted: every process was stopped")
            return 130
        codes = lab.stop()
    unclean = {n: c for n, c in codes.items() if c != 0}
    if unclean:
        print(f"processes that did not exit cleanly: {unclean}")
    print("demo " + ("finished: every step went as expected" if not failures and not unclean
                     else f"had {failures} unexpected step(s)"))
    return 0 if not failures and not unclean else 1


if __name__ == "__main__":
    sys.exit(main())
