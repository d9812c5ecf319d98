"""HTTP: web traffic -- a server answering objects of any size, and clients
fetching them with think and size distributions from pool source addresses.

The server is twisted.web (agents/tools/httpserver.py): GET /N returns N
bytes.  Each client is a real `curl`, bound to a source address drawn from
the source pool, fetching /SIZE from a server drawn from the destination
pool.  Counters: the server's `served_requests`/`served_bytes`; each client
node's `requests`, `bytes`, `errors` and `seconds` (in STATS under
"clients", and in the "clients" stream).
"""

from __future__ import annotations

import json

from agents._common import start_server
from backend.agent import TrafficAgent, Var


class Http(TrafficAgent):
    AGENT_TYPE = "HTTP"
    NICE_NAME = "Web traffic: a twisted.web server and curl clients"
    VARIABLES = [
        Var("port", "int", 8080, "the servers' TCP port (per node)", 1, 65535),
        Var("max_time", "float", 30.0, "seconds a client may take", 0.1, 3600),
    ]

    def serverExec(self):
        return start_server(self, "agents.tools.httpserver", self.getNodeVar("port"),
                            name="httpserver", on_line=self._served)

    def _served(self, fd: int, line: bytes) -> bool:
        if fd != 1 or not line.startswith(b'{"served"'):
            return False
        item = json.loads(line)
        self.count("served_requests")
        self.count("served_bytes", item["served"])
        return True

    def clientExec(self, src, dst, size):
        port = self.getNodeVar("port", dst.node)
        self.spawn(["curl", "-sS", "-o", "/dev/null", "--max-time", str(self.getNodeVar("max_time")),
                    "-w", "seer %{http_code} %{size_download} %{time_total}\n",
                    "--interface", src.address, f"http://{dst.address}:{port}/{size}"],
                   name="curl", on_line=self._fetched)

    def _fetched(self, fd: int, line: bytes) -> bool:
        if fd != 1 or not line.startswith(b"seer "):
            return False
        _, code, size, seconds = line.split()
        self.count("requests")
        self.count("bytes", int(float(size)))
        self.count("seconds", float(seconds))
        if code != b"200":
            self.count("errors")
        return False  # keep the line in the log too
