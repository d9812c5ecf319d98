"""The tail of a node's agent logs, asked of its daemon when the node panel wants it.

The logs live on the node (``WORKDIR/AGENT-GROUP/agent.log`` and
``clients.log``).  The dashboard sends the node's daemon a TAIL frame over
its TLS link (docs/PROTOCOL.md, §2.1) and waits at most ``timeout``
seconds for the answer.  Nothing goes to the experiment: no serial, no
job, no multicast -- the page stays read-only.

Bounded both ways: the request asks for at most ``lines`` lines and
``size`` bytes of each log; the answer is cut again here (a node's
certificate may be a compromised node's), only an answer to a TAIL we
sent, from the node we sent it to, is taken, and at most ``max_pending``
requests wait at once (panels opened for the same node share one).
"""

from __future__ import annotations

import itertools
from typing import Any

from twisted.internet.defer import Deferred

LINES = 40
SIZE = 8192
MAX_FILES = 32
TIMEOUT = 5.0


def _clean(logs: Any, size: int) -> list[dict[str, Any]]:
    """A node's answer, cut to what was asked: at most MAX_FILES logs of ``size`` characters."""
    cleaned = []
    for entry in logs if isinstance(logs, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            continue
        size_on_node = entry.get("size")
        cleaned.append({"folder": str(entry.get("folder", ""))[:128],
                        "file": str(entry.get("file", ""))[:64],
                        "size": size_on_node if isinstance(size_on_node, int) else None,
                        "text": entry["text"][-size:]})
        if len(cleaned) >= MAX_FILES:
            break
    return cleaned


class Tails:
    def __init__(self, clock: Any, sessions: dict[str, Any], timeout: float = TIMEOUT,
                 max_pending: int = 64) -> None:
        self.clock = clock
        #: The controller's node sessions, by node name (its live table).
        self.sessions = sessions
        self.timeout = timeout
        self.max_pending = max_pending
        self._ids = itertools.count(1)
        #: request id -> (node, [waiting Deferreds], timer)
        self._pending: dict[str, tuple[str, list[Deferred], Any]] = {}
        self.stray = 0

    def ask(self, node: str) -> Deferred:
        """Fires with ``{"node", "logs": [{folder, file, size, text}]}`` or ``{"node", "error"}``."""
        d: Deferred = Deferred()
        for asked, waiting, _ in self._pending.values():
            if asked == node:
                waiting.append(d)
                return d
        session = self.sessions.get(node)
        if session is None:
            d.callback({"node": node, "error": f"{node} is not connected: its logs cannot "
                                               f"be read now"})
            return d
        if len(self._pending) >= self.max_pending:
            d.callback({"node": node, "error": "too many log requests under way; try again"})
            return d
        request_id = f"tail-{next(self._ids)}"
        timer = self.clock.callLater(self.timeout, self._expired, request_id)
        self._pending[request_id] = (node, [d], timer)
        session.send({"type": "TAIL", "id": request_id, "lines": LINES, "bytes": SIZE})
        return d

    def _settle(self, request_id: str, answer: dict[str, Any]) -> None:
        node, waiting, timer = self._pending.pop(request_id)
        if timer.active():
            timer.cancel()
        for d in waiting:
            d.callback(answer)

    def _expired(self, request_id: str) -> None:
        node = self._pending[request_id][0]
        self._settle(request_id, {"node": node, "error": f"{node} did not send its logs "
                                                         f"within {self.timeout:g} s"})

    def answered(self, sock: Any, frame: Any) -> None:
        """A node's TAIL frame: the answer to one of ours, or stray (counted, dropped)."""
        request_id = frame.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, str) else None
        if pending is None or sock.state.get("node") != pending[0]:
            self.stray += 1
            return
        if frame.get("error"):
            self._settle(request_id, {"node": pending[0], "error": str(frame.get("error"))[:300]})
            return
        self._settle(request_id, {"node": pending[0],
                                  "logs": _clean(frame.get("logs"), SIZE)})

    def stop(self) -> None:
        """The controller stops: everyone waiting hears so now."""
        for request_id in list(self._pending):
            node = self._pending[request_id][0]
            self._settle(request_id, {"node": node, "error": "the controller is stopping"})
