"""Which nodes can be reached: heartbeats on every node's TLS link.

Every second the controller sends a HEARTBEAT on each node session that
has been idle for the heartbeat interval, and a node whose session brought
nothing at all for the heartbeat timeout is *unreachable since* the last
time it was heard: its connection is aborted (the daemon, which notices the
same silence, reconnects as soon as its link works again), and commands to
it are answered at once with that outcome instead of waiting out their
timeout.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from backend.net.heartbeat import Heartbeat

log = Logger()


class Liveness:
    def __init__(self, controller: Any, heartbeat: Heartbeat) -> None:
        self.c = controller
        self.heartbeat = heartbeat

    def check(self) -> None:
        now = self.c.reactor.seconds()
        for name, session in list(self.c.node_sessions.items()):
            silent = self.heartbeat.beat(session, now)
            if silent is None:
                continue
            record = self.c.nodes.get(name)
            if record is not None:
                record.unreachable_since = session.last_received
            self.c.count("unreachable")
            log.warn("node {node} is unreachable: nothing from it for {silent:.1f} s "
                     "(its connection stays open but silent); dropping the connection",
                     node=name, silent=silent)
            session.transport.abortConnection()
