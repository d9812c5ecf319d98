"""FTP: an FTP server (twisted.protocols.ftp) and clients fetching files of
distributed sizes.

The server (agents/tools/ftpserver.py) lets `user`/`password` log in and
RETR any size: file /N has N bytes.  Each client is a real `curl` fetching
ftp://DST/SIZE (passive mode) from a source address of the pool.
Counters: the servers' `served_files`/`served_bytes`; the clients'
`transfers`, `bytes`, `errors`.
"""

from __future__ import annotations

import json

from agents._common import start_server
from backend.agent import TrafficAgent, Var


class Ftp(TrafficAgent):
    AGENT_TYPE = "FTP"
    NICE_NAME = "FTP: a twisted FTP server and curl clients fetching sized files"
    VARIABLES = [
        Var("port", "int", 21, "the servers' control port (per node)", 1, 65535),
        Var("user", "string", "seer", "the account clients log in with"),
        Var("password", "string", "seer", "its password"),
        Var("max_time", "float", 60.0, "seconds a client may take", 0.1, 3600),
    ]

    def serverExec(self):
        return start_server(self, "agents.tools.ftpserver", self.getNodeVar("port"),
                            self.getNodeVar("user"), self.getNodeVar("password"),
                            name="ftpserver", on_line=self._served)

    def _served(self, fd: int, line: bytes) -> bool:
        if fd == 1 and line.startswith(b'{"retrieved"'):
            self.count("served_files")
            self.count("served_bytes", json.loads(line)["retrieved"])
            return True
        return False

    def clientExec(self, src, dst, size):
        port = self.getNodeVar("port", dst.node)
        user = self.getNodeVar("user", dst.node)
        password = self.getNodeVar("password", dst.node)
        self.spawn(["curl", "-sS", "-o", "/dev/null", "--max-time", str(self.getNodeVar("max_time")),
                    "--user", f"{user}:{password}", "--interface", src.address,
                    "-w", "seer %{response_code} %{size_download}\n",
                    f"ftp://{dst.address}:{port}/{size}"],
                   name="curl ftp", on_line=self._fetched)

    def _fetched(self, fd: int, line: bytes) -> bool:
        if fd != 1 or not line.startswith(b"seer "):
            return False
        _, code, size = line.split()
        self.count("transfers")
        self.count("bytes", int(float(size)))
        if code not in (b"226", b"250"):
            self.count("errors")
        return False
