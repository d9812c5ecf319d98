"""HTTPLIKE: an HTTP-like traffic agent for the runtime's end-to-end tests.

The server side is a small HTTP server (sizeserver.py) answering GET /N with
N bytes; each client is a real `curl` process fetching /SIZE from a server
picked from the destination pool, bound to a source address from the
source pool.
"""

import os
import socket
import sys

from backend.agent import TrafficAgent, Var, VarError

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sizeserver.py")


class HttpLike(TrafficAgent):
    AGENT_TYPE = "HTTPLIKE"
    NICE_NAME = "HTTP-like test agent: a size server and curl clients"
    VARIABLES = [Var("port", "int", 8080, "the server's TCP port (per node)", 1, 65535)]

    def _address(self):
        return (self.context.node_info.get("addresses") or ["127.0.0.1"])[0]

    def validate(self, new):
        # Only this node can tell whether its port is free: check it here,
        # before anything of the SET is applied.
        if "port" not in new or self.pids:
            return
        servers = (new.get("servers") or self.vars.get("servers") or {}).get("*") or []
        port = new["port"].get(self.nodename, new["port"].get("*"))
        if self.nodename in servers:
            with socket.socket() as s:
                try:
                    s.bind((self._address(), port))
                except OSError as e:
                    raise VarError(
                        f"port: {port} is not free on {self.nodename} ({e.strerror})") from None

    def serverExec(self):
        port = self.getNodeVar("port")
        self.spawn([sys.executable, SERVER, self._address(), str(port)], name="sizeserver")
        return self.waitForPort(self._address(), port)

    def clientExec(self, src, dst, size):
        port = self.getNodeVar("port", dst.node)
        self.spawn(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}\n",
                    "--interface", src.address, f"http://{dst.address}:{port}/{size}"],
                   name="curl")
