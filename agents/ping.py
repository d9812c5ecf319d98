"""PING: ICMP echo to targets at an interval; RTT and loss per target.

One `ping` (iputils) per target, in its own process group.  Targets are
node names or addresses of the experiment (others only with
allow_external).  Each target's result -- sent, received, loss, rtt_min,
rtt_avg, rtt_max in ms -- is reported as a "ping_done" event when its
echoes are done (or at STOP) and returned by STATS under "targets".
"""

from __future__ import annotations

import re
from typing import Any

from backend.agent import Agent, Var

_REPLY = re.compile(rb"icmp_seq=(\d+) .*time=([\d.]+) ms")
_SUMMARY = re.compile(rb"(\d+) packets transmitted, (\d+) received")


class Ping(Agent):
    AGENT_TYPE = "PING"
    NICE_NAME = "ICMP echo to targets; RTT min/avg/max and loss per target"
    MENU = "Measurement"
    VARIABLES = [
        Var("targets", "strlist", [], "nodes or addresses to ping"),
        Var("interval", "float", 1.0, "seconds between echoes", 0.01, 60),
        Var("count", "int", 10, "echoes per target (0: until STOP)", 0, 1_000_000),
        Var("size", "int", 56, "payload bytes", 0, 65000),
        Var("allow_external", "cidrlist", [],
            "addresses outside the experiment this group may ping anyway"),
    ]

    def setup(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def handleSTART(self):
        targets = self.getNodeVar("targets")
        if not targets:
            raise ValueError("set targets (nodes or addresses) before START")
        return self.resolveTargets(targets, self.getNodeVar("allow_external")).addCallback(
            self._start)

    def _start(self, targets) -> dict[str, Any]:
        count = self.getNodeVar("count")
        interval = self.getNodeVar("interval")
        for target in targets:
            label = target.node or target.address
            result = {"address": target.address, "sent": 0, "received": 0, "rtts": []}
            self.results[label] = result
            argv = ["ping", "-n", "-i", f"{interval:g}", "-s", str(self.getNodeVar("size")),
                    "-W", "2"]
            argv += ["-c", str(count)] if count else ["-w", "86400"]
            process = self.spawn(argv + [target.address], name=f"ping {label}",
                                 on_line=lambda fd, line, r=result: self._line(r, line),
                                 ends_run=True)
            process.ended.addCallback(lambda _, lb=label: self._done(lb))
        return {"targets": sorted(self.results)}

    def _line(self, result: dict[str, Any], line: bytes) -> bool:
        reply = _REPLY.search(line)
        if reply:
            result["received"] += 1
            result["sent"] = max(result["sent"], int(reply.group(1)))
            result["rtts"].append(float(reply.group(2)))
            self.count("replies")
            return False
        summary = _SUMMARY.search(line)
        if summary:
            result["sent"] = int(summary.group(1))
            result["received"] = int(summary.group(2))
        return False

    def _summary(self, label: str) -> dict[str, Any]:
        r = self.results[label]
        rtts = r["rtts"]
        sent = max(r["sent"], r["received"])
        return {"target": label, "address": r["address"], "sent": sent,
                "received": r["received"],
                "loss": round(1 - r["received"] / sent, 4) if sent else None,
                "rtt_min": min(rtts) if rtts else None,
                "rtt_avg": round(sum(rtts) / len(rtts), 3) if rtts else None,
                "rtt_max": max(rtts) if rtts else None}

    def _done(self, label: str) -> None:
        self.report("ping_done", **self._summary(label))

    def handleSTOP(self):
        return self.stopProcesses()

    def handleSTATS(self):
        out = super().handleSTATS()
        out["targets"] = {label: self._summary(label) for label in self.results}
        return out
