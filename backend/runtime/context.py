"""What the daemon gives each agent instance: its context.

The node and group it runs for, the reactor, how to report and stream,
the node's own addresses, its work folder, the experiment's node table,
the tag its processes carry, and how to say its run ended by itself.
Agents reach it as ``self.context``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed

from backend.runtime.processes import ProcessManager


def _no_table() -> Deferred:
    return succeed({})


@dataclass
class AgentContext:
    """What the daemon gives each agent instance."""

    node: str
    agent_type: str
    group: str
    reactor: Any
    report: Callable[[str, dict[str, Any]], None] = lambda event, data: None
    stream: Callable[[str, Any], None] = lambda name, data: None
    node_info: dict[str, Any] = field(default_factory=dict)
    workdir: str = "."
    #: Fires with {node: {"addresses": [...], ...}} for every node of the experiment.
    node_table: Callable[[], Deferred] = _no_table
    #: Tag that marks every process this agent starts (see backend.runtime.processes).
    process_tag: str = ""
    processes: ProcessManager | None = None
    #: Seconds between "counters" streams while they change (None: never;
    #: a traffic controller sends its counters with its "clients" stream).
    counters_interval: float | None = 1.0
    #: (why) -> None: this group's run on this node ended by itself.
    run_finished: Callable[[str], None] = lambda why: None

    def process_manager(self) -> ProcessManager:
        if self.processes is None:
            self.processes = ProcessManager(
                self.reactor, Path(self.workdir) / "agent.log",
                self.process_tag or f"{self.node}/{self.agent_type}/{self.group}/{os.getpid()}",
            )
        return self.processes
