"""DNS: an authoritative server for a test zone, and clients resolving names.

The servers (twisted.names, agents/tools/dnsserver.py) answer for `zone`
(default seer.test., a reserved test domain): NODE.seer.test is every node
of the experiment, LABEL.seer.test every node label, ns.seer.test the
server.  Each client is a real `dig` asking a server from the destination
pool for a random name of the zone; `think` sets the rate.  Counters: the
servers' `queries`; the clients' `lookups`, `answered`, `failed`.
"""

from __future__ import annotations

import json
from pathlib import Path

from agents._common import start_server
from backend.agent import TrafficAgent, Var


class Dns(TrafficAgent):
    AGENT_TYPE = "DNS"
    NICE_NAME = "Authoritative DNS for a test zone, and clients resolving names"
    VARIABLES = [
        Var("zone", "string", "seer.test", "the test zone the servers answer for"),
        Var("port", "int", 53, "the servers' UDP/TCP port (per node)", 1, 65535),
        Var("think", "distribution", "expo(0.5)", "seconds between lookups on a client node"),
    ]

    def serverExec(self):
        return self.context.node_table().addCallback(self._serve)

    def _serve(self, table) -> None:
        records = {}
        for node, info in table.items():
            addresses = info.get("addresses") or []
            if addresses:
                records[node] = addresses[0]
                for label in info.get("labels") or []:
                    records[label] = addresses[0]
        path = Path(self.context.workdir) / "zone.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records))
        # It answers on TCP too: waiting for the TCP port waits for the server.
        return start_server(self, "agents.tools.dnsserver", self.getNodeVar("port"),
                            self.getNodeVar("zone"), str(path), name="dnsserver",
                            on_line=self._query)

    def _query(self, fd: int, line: bytes) -> bool:
        if fd == 1 and line.startswith(b'{"query"'):
            self.count("queries")
            return True
        return False

    def clientInit(self):
        # Every name of the zone, from the servers' point of view: the nodes.
        return self.context.node_table().addCallback(
            lambda table: setattr(self, "names", sorted(table)) if table else None)

    def clientExec(self, src, dst, size):
        names = getattr(self, "names", None) or [dst.node or "ns"]
        name = f"{self.rng.choice(names)}.{self.getNodeVar('zone').rstrip('.')}"
        port = self.getNodeVar("port", dst.node)
        self.spawn(["dig", f"@{dst.address}", "-p", str(port), "-b", src.address, "+short",
                    "+tries=1", "+time=2", name, "A"], name="dig",
                   on_line=lambda fd, line: self._answer(fd, line))
        self.count("lookups")

    def _answer(self, fd: int, line: bytes) -> bool:
        if fd == 1:
            if line.strip() and line[:1].isdigit():
                self.count("answered")
            elif b"timed out" in line or b"no servers" in line:
                self.count("failed")
        return False
