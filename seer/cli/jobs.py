"""`seer jobs` and `seer job ID`: the controller's job history.

Every COMMAND, SET, PUT and GET is a job, known by the id the other commands
print (``job 42``): `seer jobs` lists the latest -- when, who sent it, what,
to whom, and its outcome counts -- and `seer job 42` shows each node's
outcome, including outcomes that came after the client stopped waiting
(Salt's jobs.lookup_jid; ours also says who sent it).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from seer.cli.common import EXIT_OK, client_flags, open_experiment


def _when(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"


def _what(job: dict[str, Any]) -> str:
    if job["type"] in ("PUT", "GET"):
        return f"{job['type']} {job['command']}"
    verb = job["command"] if job["type"] == "COMMAND" else "SET"
    return f"{verb} {job['agent']} {job['group']}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "-"


def _target(target: Any) -> str:
    if target in (None, "*"):
        return "all"
    return ",".join(target) if isinstance(target, list) else str(target)


def cmd_jobs(args: argparse.Namespace) -> int:
    with open_experiment(args) as exp:
        jobs = exp.jobs(args.limit)
    if args.json:
        print(json.dumps(jobs, indent=2))
        return EXIT_OK
    if not jobs:
        print("no jobs yet: no command was sent to the experiment")
    for job in jobs:
        target = _target(job["target"])
        print(f"job {job['job']:<6} {_when(job['time'])}  {job['sender']:<12} "
              f"{_what(job):<28} to {target:<16} {_counts(job['counts'])}")
    return EXIT_OK


def cmd_job(args: argparse.Namespace) -> int:
    with open_experiment(args) as exp:
        job = exp.job(args.job)
    if args.json:
        print(json.dumps(job, indent=2))
        return EXIT_OK
    print(f"job {job['job']}: {_what(job)} to {_target(job['target'])}, sent by "
          f"{job['sender']} at {_when(job['time'])}; {_counts(job['counts'])}")
    width = max((len(n) for n in job["nodes"]), default=4)
    for node in job["nodes"]:
        outcome = job["outcomes"][node]
        text = outcome["status"] + (f": {outcome['error']}" if outcome.get("error") else "")
        if outcome.get("late"):
            text += "  (after the client stopped waiting)"
        print(f"  {node:<{width}}  {text}")
    return EXIT_OK


def define(name: str, p: argparse.ArgumentParser) -> None:
    client_flags(p)
    if name == "jobs":
        p.description = ("List the latest commands sent to the experiment, newest first: the "
                         "job id, when, who sent it, what, to which nodes, and the outcomes.")
        p.add_argument("--limit", "-n", type=int, default=20,
                       help="how many (1 to 1000; default: 20)")
        p.set_defaults(func=cmd_jobs)
    else:
        p.description = ("One job's outcome on every node it targeted, including outcomes "
                         "that arrived after the client stopped waiting. The job id is what "
                         "seer set/start/stop/command/put/get print, or seer jobs lists.")
        p.add_argument("job", type=int, help="the job id, e.g. 42")
        p.set_defaults(func=cmd_job)
