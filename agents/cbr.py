"""CBR: UDP constant-bit-rate traffic from senders to sinks.

START starts a sink on every node listed in `sinks` and, after `warmup`
seconds, a sender on every node listed in `senders`, sending to every sink
at `rate` (bits/s, IP and UDP headers counted) in packets of `size` bytes
for `duration` seconds.  Senders report "cbr_sent" (requested and achieved
rate); sinks report "cbr_received" -- received rate, loss, jitter -- when
the flow ends (`idle` seconds without packets) or at STOP.  STATS gives the
latest of each.
"""

from __future__ import annotations

import sys
from typing import Any

from agents._common import ToolRunAgent, own_address
from backend.agent import Var


class Cbr(ToolRunAgent):
    AGENT_TYPE = "CBR"
    NICE_NAME = "UDP constant bit rate: senders to sinks; rate, loss and jitter"
    MENU = "Traffic"
    VARIABLES = [
        Var("senders", "nodelist", [], "nodes that send"),
        Var("sinks", "strlist", [], "nodes (or addresses) that receive"),
        Var("rate", "rate", "1mbit", "bits per second per flow, e.g. 10mbit", 1000, 10e9),
        Var("size", "int", 1000, "packet size in bytes (IP header included)", 64, 65000),
        Var("duration", "float", 10.0, "seconds each sender sends", 0.1, 3600),
        Var("port", "int", 5001, "UDP port of the sinks", 1, 65535),
        Var("warmup", "float", 0.5, "seconds senders wait for the sinks", 0, 60),
        Var("idle", "float", 2.0, "a sink reports after this long without packets", 0.2, 600),
        Var("allow_external", "cidrlist", [], "addresses outside the experiment allowed as sinks"),
    ]

    def handleSTART(self):
        if self.pids:
            raise ValueError("already running; STOP first")
        d = self.resolveTargets(self.getNodeVar("sinks"), self.getNodeVar("allow_external"))
        return d.addCallback(self._start)

    def _start(self, sinks) -> dict[str, Any]:
        started: dict[str, Any] = {}
        if any(s.node == self.nodename for s in sinks):
            bind = f"{own_address(self)}:{self.getNodeVar('port')}"
            self.spawn([sys.executable, "-m", "agents.tools.cbr", "sink", "--bind", bind,
                        "--idle", str(self.getNodeVar("idle"))],
                       name="cbr sink", on_line=self.tool_line, ends_run=True)
            started["sink"] = bind
        if self.nodename in self.getNodeVar("senders"):
            delay = self.getNodeVar("warmup")
            for sink in sinks:
                self.reactor.callLater(delay, self._send, sink.address)
            started["sending_to"] = [s.address for s in sinks]
        return started

    def _send(self, address: str) -> None:
        self.spawn([sys.executable, "-m", "agents.tools.cbr", "send", "--to",
                    f"{address}:{self.getNodeVar('port')}", "--bind", own_address(self),
                    "--rate", str(self.getNodeVar("rate")), "--size", str(self.getNodeVar("size")),
                    "--duration", str(self.getNodeVar("duration"))],
                   name=f"cbr send {address}", on_line=self.tool_line, ends_run=True)

    def result(self, kind: str, data: dict[str, Any]) -> None:
        super().result(kind, data)
        if kind in ("cbr_sent", "cbr_received"):
            self.report(kind, **data)
        elif kind == "cbr_sink":
            self.stream("cbr_sink", data)
