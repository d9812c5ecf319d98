"""What the page shows each second: every node's state and every link's rate and drops.

A node's state, from the node table and the stats pipeline:

* ``up`` -- connected, its acknowledgements and readings keeping up;
* ``lagging`` -- connected, but its readings stopped coming (stale for 3
  intervals, having come before: a daemon without stats never lags for
  that), or it has sat on the same unacknowledged serials for a whole tick;
* ``unreachable`` -- its link went silent (the heartbeat timeout);
* ``down`` -- its connection closed (or, after a controller restart, it
  has not reconnected yet);
* ``never registered``.

Pure over what it is given (the node table, the pipeline, the current
serial, ``now``); the one thing it keeps between ticks is each node's last
acknowledgement, to tell a node that is behind from one catching up.
"""

from __future__ import annotations

from typing import Any, Callable

#: A node's readings are stale after this many of its intervals (the pipeline's rule).
STALE_AFTER = 3
#: The link fields the page uses (the aggregate has more).
LINK_FIELDS = ("bps", "pps", "drops_ps", "utilization", "capacity_bps", "backlog_bytes")
NODE_FIELDS = ("rx_bps", "tx_bps", "cpu_percent")


def _number(value: Any, digits: int = 0) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(value, digits) if digits else int(round(value))


class LiveModel:
    def __init__(self, nodes: Any, pipeline: Any, current_serial: Callable[[], int]) -> None:
        self.nodes = nodes
        self.pipeline = pipeline
        self.current_serial = current_serial
        #: node -> (acknowledged serial, lag) at the last tick.
        self._last_ack: dict[str, tuple[int, int]] = {}

    def node_state(self, record: Any, lag: int | None, now: float) -> str:
        state = record.state
        if state == "not reconnected":
            return "down"
        if state != "up":
            return state
        source = self.pipeline.store.sources.get(record.name)
        if source is not None and source.age(now) > STALE_AFTER * source.interval:
            return "lagging"
        previous = self._last_ack.get(record.name)
        if lag and previous is not None and previous[1] and previous[0] == record.serial:
            return "lagging"
        return "up"

    def nodes_now(self, now: float, remember: bool = True) -> dict[str, dict[str, Any]]:
        """{node: {state, lag, rx_bps, tx_bps, cpu_percent}} for every known node."""
        current = self.current_serial()
        stats = (self.pipeline.latest or {}).get("nodes") or {}
        table = {}
        acks = {}
        for record in self.nodes:
            lag = record.lag(current)
            entry: dict[str, Any] = {"state": self.node_state(record, lag, now), "lag": lag}
            mine = stats.get(record.name) or {}
            for field in NODE_FIELDS:
                value = _number(mine.get(field), 1 if field == "cpu_percent" else 0)
                if value is not None:
                    entry[field] = value
            table[record.name] = entry
            acks[record.name] = (record.serial, lag or 0)
        if remember:
            self._last_ack = acks
        return table

    def links_now(self) -> dict[str, dict[str, Any]]:
        """{link: {bps, pps, drops_ps, utilization, capacity_bps, backlog_bytes,
        ends: {node: [tx_bps, rx_bps]}}} from the latest aggregate."""
        links = (self.pipeline.latest or {}).get("links") or {}
        table = {}
        for name, link in links.items():
            entry: dict[str, Any] = {}
            for field in LINK_FIELDS:
                value = _number(link.get(field), 3 if field == "utilization" else 0)
                if value is not None:
                    entry[field] = value
            entry["ends"] = {node: [_number(end.get("tx_bps")), _number(end.get("rx_bps"))]
                             for node, end in (link.get("ends") or {}).items()
                             if isinstance(end, dict)}
            table[name] = entry
        return table

    def tick(self, now: float, topology_version: str, remember: bool = True) -> dict[str, Any]:
        """One second's update: the page redraws from this alone.  ``remember``:
        the acknowledgements seen are the next tick's "before" (a page's first
        picture, drawn between ticks, must not be)."""
        latest = self.pipeline.latest or {}
        return {"t": round(now, 3), "stats_time": latest.get("time"),
                "serial": self.current_serial(), "topology": topology_version,
                "nodes": self.nodes_now(now, remember), "links": self.links_now()}
