"""TCPDUMP: packet capture on named interfaces with a filter, a pcap each.

START runs one `tcpdump -w` per interface (default: every experiment
interface of the node) and returns once each is listening -- or fails with
tcpdump's own message (a bad filter, say).  STOP ends them; each reports how
many packets it captured.  The pcaps are TCPDUMP-<group>/capture-<iface>.pcap
in the node's work folder: `seer get` brings them back.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredList

from backend.agent import Agent, ProcessFailed, Var

_CAPTURED = re.compile(rb"(\d+) packets? captured")
READY_TIMEOUT = 10.0


class Tcpdump(Agent):
    AGENT_TYPE = "TCPDUMP"
    NICE_NAME = "Packet capture on named interfaces, a pcap per interface"
    MENU = "Measurement"
    VARIABLES = [
        Var("interfaces", "strlist", [], "interfaces (default: every experiment interface)"),
        Var("filter", "string", "", "pcap filter expression, e.g. 'udp or icmp'"),
        Var("snaplen", "int", 128, "bytes kept of each packet", 64, 65535),
        Var("count", "int", 0, "stop after this many packets per interface (0: at STOP)", 0),
        Var("duration", "float", 0, "stop after this many seconds (0: at STOP)", 0, 86400),
    ]

    def setup(self) -> None:
        self.captured: dict[str, int] = {}
        self.files: dict[str, str] = {}
        self._last_words: dict[str, str] = {}

    def _interfaces(self) -> list[str]:
        mine = [i["name"] for i in self.context.node_info.get("interfaces") or []]
        wanted = self.getNodeVar("interfaces") or mine
        addresses = self.context.node_info.get("addresses") or []
        if not mine and all(a.startswith("127.") for a in addresses):
            mine = ["lo"]  # loopback mode: the experiment is on lo
            wanted = self.getNodeVar("interfaces") or mine
        foreign = [i for i in wanted if i not in mine]
        if foreign:
            raise ValueError(f"{', '.join(foreign)}: not an experiment interface of "
                             f"{self.nodename} (it has: {', '.join(mine) or 'none'})")
        if not wanted:
            raise ValueError(f"{self.nodename} has no experiment interface to capture on")
        return wanted

    def handleSTART(self):
        if self.pids:
            raise ValueError("already capturing; STOP first")
        interfaces = self._interfaces()
        folder = Path(self.context.workdir)
        folder.mkdir(parents=True, exist_ok=True)
        ready = []
        for iface in interfaces:
            path = folder / f"capture-{iface}.pcap"
            # --immediate-mode: each packet is written as it comes, so a STOP
            # right after the traffic loses nothing still in the capture buffer.
            argv = ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode",
                    "-s", str(self.getNodeVar("snaplen")),
                    "-w", str(path)]
            if self.getNodeVar("count"):
                argv += ["-c", str(self.getNodeVar("count"))]
            argv += shlex.split(self.getNodeVar("filter"))
            listening: Deferred = Deferred()
            process = self.spawn(argv, name=f"tcpdump {iface}",
                                 on_line=lambda fd, line, i=iface, d=listening:
                                 self._line(i, line, d), ends_run=True)
            process.ended.addCallback(lambda p, d=listening, i=iface: self._ended(p, d, i))
            self.files[iface] = f"{Path(self.context.workdir).name}/capture-{iface}.pcap"
            ready.append(listening.addTimeout(READY_TIMEOUT, self.reactor))
        if self.getNodeVar("duration"):
            self.reactor.callLater(self.getNodeVar("duration"), self.stopProcesses)
        return DeferredList(ready, fireOnOneErrback=True, consumeErrors=True).addCallbacks(
            lambda _: {"capturing": interfaces, "files": self.files},
            lambda f: _first_error(f))

    def _line(self, iface: str, line: bytes, listening: Deferred) -> bool:
        if b"listening on" in line and not listening.called:
            listening.callback(iface)
        elif line.strip():
            self._last_words[iface] = line.decode(errors="replace").strip()
        captured = _CAPTURED.search(line)
        if captured:
            self.captured[iface] = int(captured.group(1))
            self.count("captured", int(captured.group(1)))
        return False

    def _ended(self, process: Any, listening: Deferred, iface: str) -> None:
        if not listening.called:
            why = self._last_words.get(iface) or process.describe_exit()
            listening.errback(ProcessFailed(f"tcpdump on {iface} did not start: {why}"))
        self.report("capture_done", interface=iface, packets=self.captured.get(iface, 0),
                    file=self.files.get(iface))

    def handleSTOP(self):
        return self.stopProcesses().addCallback(
            lambda _: {"captured": dict(self.captured), "files": self.files})

    def handleSTATS(self):
        out = super().handleSTATS()
        out.update(captured=dict(self.captured), files=self.files)
        return out


def _first_error(failure: Any) -> Any:
    # DeferredList wraps the first failure; hand on the tcpdump message itself.
    inner = getattr(failure.value, "subFailure", None)
    return inner if inner is not None else failure
