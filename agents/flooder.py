"""FLOODER: UDP, TCP SYN or ICMP echo floods at a set rate, from spoofed
source addresses drawn from an address pool -- the DDoS of SEER's catalogue.

Every flood is bounded: `rate` packets per second for `duration` seconds
(and at most `count` packets), and it stops by itself.  Targets must be
nodes or addresses of the experiment (allow_external says otherwise, for
this group only).  Spoofed `sources` must lie on the experiment's own
subnets, so the victim's answers stay inside the testbed; on a loopback
experiment there is no spoofing at all (answers could leave the machine).
Each flood reports "flood_done" with requested and achieved packets/s.
"""

from __future__ import annotations

import sys
from typing import Any

from agents._common import ToolRunAgent
from backend.agent import Var, VarError
from backend.runtime.safety import experiment_space, resolve_targets


class Flooder(ToolRunAgent):
    AGENT_TYPE = "FLOODER"
    NICE_NAME = "UDP, TCP SYN and ICMP floods at a set rate from spoofed sources"
    MENU = "Attack"
    VARIABLES = [
        Var("targets", "strlist", [], "victims: nodes or addresses of the experiment"),
        Var("type", "string", "udp", "udp, syn or icmp"),
        Var("rate", "float", 100.0, "packets per second per target", 1, 1_000_000),
        Var("duration", "float", 10.0, "seconds the flood lasts", 0.1, 3600),
        Var("count", "int", 0, "stop after this many packets per target (0: no limit)", 0),
        Var("sources", "cidrlist", [],
            "spoofed source ranges (default: this node's own addresses, no spoofing)"),
        Var("port", "int", 80, "destination port (udp, syn)", 1, 65535),
        Var("size", "int", 32, "payload bytes (udp, icmp)", 0, 1400),
        Var("seed", "int", 0, "random seed for sources and ports (0: fresh)"),
        Var("allow_external", "cidrlist", [], "targets outside the experiment allowed anyway"),
    ]

    RESULTS_KEY = "floods"

    def validate(self, new):
        flood_type = (new.get("type") or {}).get(self.nodename) or (new.get("type") or {}).get("*")
        if flood_type is not None and flood_type not in ("udp", "syn", "icmp"):
            raise VarError(f"type: {flood_type!r} is not udp, syn or icmp")

    def handleSTART(self):
        if self.pids:
            raise ValueError("a flood is running; STOP it first")
        targets = self.getNodeVar("targets")
        if not targets:
            raise ValueError("set targets before START")
        d = self.context.node_table()
        return d.addCallback(self._start)

    def _start(self, table: dict[str, Any]) -> dict[str, Any]:
        allow = self.getNodeVar("allow_external")
        targets = resolve_targets(self.getNodeVar("targets"), table, allow)
        own, subnets = experiment_space(table)
        mine = (table.get(self.nodename) or {}).get("addresses") or []
        sources = self.getNodeVar("sources") or [f"{a}/32" for a in mine]
        if not sources:
            raise ValueError(f"{self.nodename} has no address to send from; set sources")
        loopback = all(a.startswith("127.") for a in mine)
        import netaddr  # here: every daemon loads this module at start (footprint)

        for cidr in sources:
            net = netaddr.IPNetwork(cidr)
            spoofed = str(net) not in (f"{a}/32" for a in mine)
            if spoofed and loopback:
                raise ValueError("spoofed sources need the namespace testbed: on a loopback "
                                 "experiment the victim's answers could leave this machine")
            if spoofed and not any(net in s for s in subnets):
                raise ValueError(f"sources: {cidr} is not on the experiment's subnets; the "
                                 "victim's answers to it would have nowhere to go")
        allowed = [f"{a}/32" for a in own] + [str(s) for s in subnets] + list(allow)
        for target in targets:
            argv = [sys.executable, "-m", "agents.tools.flood", "--type", self.getNodeVar("type"),
                    "--target", target.address, "--rate", str(self.getNodeVar("rate")),
                    "--duration", str(self.getNodeVar("duration")),
                    "--count", str(self.getNodeVar("count")), "--sources", ",".join(sources),
                    "--allowed", ",".join(allowed), "--port", str(self.getNodeVar("port")),
                    "--size", str(self.getNodeVar("size")), "--seed", str(self.getNodeVar("seed"))]
            self.spawn(argv, name=f"flood {target.address}", on_line=self.tool_line,
                       ends_run=True)
        return {"flooding": [t.address for t in targets], "sources": sources}

    def result(self, kind: str, data: dict[str, Any]) -> None:
        # By target: one flood per target, and STATS answers "what did the flood at X do".
        self.results[data.get("target", kind)] = data
        if kind == "flood_done":
            self.count("packets", data["packets"])
        self.report(kind, **data)
