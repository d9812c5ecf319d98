"""What the shipped agents share: the node's own address, starting a tool
server, and the results of bounded tool runs (CBR's flows, FLOODER's floods).

The leading underscore keeps the agent loader from importing this module as
an agent module of its own (it skips ``_*.py`` in an agent directory); the
agents import it as ``agents._common``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, ClassVar

from twisted.internet.defer import Deferred

from backend.agent import Agent


def own_address(agent: Agent) -> str:
    """The node's first experiment address: what its servers listen on and
    its senders bind to.  A loopback experiment has none: 127.0.0.1."""
    return (agent.context.node_info.get("addresses") or ["127.0.0.1"])[0]


def start_server(agent: Agent, module: str, port: int, *args: str, name: str,
                 on_line: Callable[[int, bytes], bool]) -> Deferred:
    """Run the tool server ``python -m module ADDRESS PORT *args`` on the
    node's own address; fires once it accepts TCP connections, so that a
    START returns with the server up."""
    address = own_address(agent)
    agent.spawn([sys.executable, "-m", module, address, str(port), *args], name=name,
                on_line=on_line)
    return agent.waitForPort(address, port)


class ToolRunAgent(Agent):
    """An agent whose START runs bounded tool processes, each printing its
    results as JSON lines ``{kind: data}``; STATS returns the latest of each
    and STOP ends the runs.

    Subclasses pass :meth:`tool_line` as the ``on_line`` of their tools and
    say in :meth:`result` what a line means (store it, report it).
    """

    #: The STATS key the results go under; None puts them in STATS itself.
    RESULTS_KEY: ClassVar[str | None] = None

    def setup(self) -> None:
        self.results: dict[str, Any] = {}

    def tool_line(self, fd: int, line: bytes) -> bool:
        """One output line of a tool: a result line goes to :meth:`result`
        (and not to the agent log); anything else to the log."""
        if fd != 1 or not line.startswith(b"{"):
            return False
        try:
            (kind, data), = json.loads(line).items()
        except ValueError:  # not JSON, or not one {kind: data}: keep it in the log
            return False
        self.result(kind, data)
        return True

    def result(self, kind: str, data: dict[str, Any]) -> None:
        """Override: what a result line does (the default keeps it by kind)."""
        self.results[kind] = data

    def handleSTOP(self) -> Deferred:
        """End every run now; what they did so far stays in STATS."""
        return self.stopProcesses()

    def handleSTATS(self) -> dict[str, Any]:
        """The counters and the latest result of each run."""
        out = super().handleSTATS()
        if self.RESULTS_KEY is None:
            out.update(self.results)
        else:
            out[self.RESULTS_KEY] = self.results
        return out
