"""HTTPLIKE: an HTTP-like traffic agent for the runtime's end-to-end tests.

The server side is a small HTTP server (sizeserver.py) answering GET /N with
N bytes; each client is a real `curl` process fetching /SIZE from a server
picked from the destination pool, bound to a source address from the
source pool.
"""

import os
import sys

from backend.agent import TrafficAgent, Var

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sizeserver.py")


class HttpLike(TrafficAgent):
    AGENT_TYPE = "HTTPLIKE"
    NICE_NAME = "HTTP-like test agent: a size server and curl clients"
    VARIABLES = [Var("port", "int", 8080, "the server's TCP port (per node)")]

    def serverExec(self):
        address = (self.context.node_info.get("addresses") or ["127.0.0.1"])[0]
        port = self.getNodeVar("port")
        self.spawn([sys.executable, SERVER, address, str(port)], name="sizeserver")
        return self.waitForPort(address, port)

    def clientExec(self, src, dst, size):
        port = self.getNodeVar("port", dst.node)
        self.spawn(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}\n",
                    "--interface", src.address, f"http://{dst.address}:{port}/{size}"],
                   name="curl")
