"""Sinks: who gets the experiment's reports, streams and status updates.

A sink is a client that sent SUBSCRIBE (`seer watch`, a script, the
dashboard) or a node whose ``sink`` attribute is true (SEER's sinks on the
control network).  One encoding of a frame is shared by every sink.
"""

from __future__ import annotations

from typing import Any

from backend.controller.nodetable import NodeTable
from backend.net.session import FrameSession
from seer.protocol.wire import encode_frame

TRUE = ("1", "true", "yes")


class Sinks:
    def __init__(self, nodes: NodeTable, node_sessions: dict[str, FrameSession],
                 client_sessions: set[FrameSession]) -> None:
        self.nodes = nodes
        self.node_sessions = node_sessions
        self.client_sessions = client_sessions
        self._last_update: Any = None

    def subscribe(self, session: FrameSession) -> None:
        session.state["sink"] = True

    def has_clients(self) -> bool:
        return any(s.state.get("sink") for s in self.client_sessions)

    def send(self, header: dict[str, Any]) -> int:
        """Send one frame to every sink; returns how many got it."""
        frame = encode_frame(header)
        count = 0
        for session in self.client_sessions:
            if session.state.get("sink"):
                session.send_raw(frame)
                count += 1
        for name, session in self.node_sessions.items():
            record = self.nodes.get(name)
            if record and str(record.attributes.get("sink", "")).lower() in TRUE:
                session.send_raw(frame)
                count += 1
        return count

    def update(self, status: dict[str, Any]) -> bool:
        """Send ``status`` to the subscribed clients if its serial or any
        node's state changed since the last update; whether it was sent."""
        if not self.has_clients():
            return False
        summary = (status["serial"],
                   tuple((n["name"], n["up"], n["serial"]) for n in status["nodes"]))
        if summary == self._last_update:
            return False
        self._last_update = summary
        self.send(dict(status, type="STATUS"))
        return True
