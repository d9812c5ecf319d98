"""The controller's stats pipeline: readings in, one aggregate per interval out to every sink.

Nodes send STATS frames (their pollers' readings); the testbed's link
poller sends READINGS (an experimenter request) for queues no daemon can
see.  Both go into the :class:`ReadingStore`.  Every ``interval`` the
aggregators turn the readings into the interval's aggregate -- rates per
interface, link, node and agent group -- which is kept in the
:class:`History` (the last ``history`` seconds) and handed to every sink
(``doUpdates``): the clients that subscribed (AGGREGATE frames), the run
records.  The Prometheus exposition reads the store itself at each scrape:
there, counters stay counters.

The command log -- every command with its time, sender, target and outcome
counts -- goes to the same sinks (COMMAND_LOG frames, commands.csv).

Client requests: STATS answers the current aggregate, optionally with
history and the latest commands, and with ``subscribe`` makes the client a
stats sink.  Nothing here blocks: frames are parsed and folded in the
reactor thread; the sinks append to buffered files or send frames.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, Protocol

from twisted.logger import Logger

from backend.controller.aggregators.base import Aggregator, View
from backend.controller.aggregators.history import History
from backend.controller.aggregators.links import LinkMap
from backend.controller.aggregators.shipped import SHIPPED
from backend.controller.aggregators.store import ReadingStore
from backend.plugins import PluginSet
from seer.protocol.stats import ReadingsError, parse_readings
from seer.protocol.wire import Frame, encode_frame

log = Logger()

ENTRY_POINT_GROUP = "seer.aggregators"
#: Command-log entries kept in memory (for STATS requests and the dashboard).
COMMANDS_KEPT = 1000


class StatsSink(Protocol):
    def update(self, aggregate: dict[str, Any]) -> None: ...

    def command(self, entry: dict[str, Any]) -> None: ...


def load_aggregators(dirs: list[str] = ()) -> PluginSet[Aggregator]:
    """Shipped aggregators, then ``seer.aggregators`` entry points, then folders."""
    plugins: PluginSet[Aggregator] = PluginSet(Aggregator, "aggregator")
    for cls in SHIPPED:
        plugins.add(cls, "shipped")
    plugins.load_entry_points(ENTRY_POINT_GROUP)
    for directory in dirs:
        plugins.load_directory(directory)
    return plugins


def poller_reading(frame: dict[str, Any]) -> dict[str, Any] | None:
    """The frame's poller counters as a reading of their own (poller "poller"),
    so that no_response and the pollers' CPU are series like any other."""
    pollers, t = frame.get("pollers"), frame.get("time")
    if not isinstance(pollers, dict) or not isinstance(t, (int, float)):
        return None
    series = []
    for name, status in sorted(pollers.items())[:64]:
        if not isinstance(status, dict):
            continue
        values = {f"{k}_total" if not k.endswith("_total") and k != "interval" else k: v
                  for k, v in status.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        values.pop("interval", None)
        series.append([{"poller": str(name)[:128]}, values])
    return {"poller": "poller", "t": t, "series": series}


class StatsPipeline:
    """Readings, aggregates, history, command log and the stats sinks."""

    def __init__(self, clock: Any, nodes: Any, *, interval: float = 1.0,
                 history: float = 600.0, link_names: dict[str, str] | None = None,
                 aggregator_dirs: list[str] = (), max_series: int = 100_000,
                 alive: Any = lambda session: True) -> None:
        self.clock = clock
        #: Whether a client session is still open (subscribers that closed are dropped).
        self._alive = alive
        #: The controller's node table (names, interfaces, up).
        self.nodes = nodes
        self.interval = interval
        self.link_names = dict(link_names or {})
        self.store = ReadingStore(max_series)
        self.history = History(max(1, round(history / interval)))
        self.plugins = load_aggregators(list(aggregator_dirs))
        self.aggregators = [cls() for _, cls in sorted(self.plugins.classes.items())]
        self.sinks: list[StatsSink] = []
        self.subscribers: set[Any] = set()
        self.commands: deque[dict[str, Any]] = deque(maxlen=COMMANDS_KEPT)
        self.latest: dict[str, Any] | None = None
        self.counters: Counter[str] = Counter()
        self._links = LinkMap({})
        self._links_key: Any = None

    # -- readings in ----------------------------------------------------------------

    def node_frame(self, sock: Any, msg: Frame) -> None:
        """A node's STATS frame."""
        node = sock.state["node"]
        try:
            readings = parse_readings(msg.get("readings"))
        except ReadingsError as e:
            self.counters["bad_stats_frames"] += 1
            if self.counters["bad_stats_frames"] in (1, 100, 10000):
                log.warn("bad STATS frame from {node}: {error}", node=node, error=str(e))
            return
        extra = poller_reading(msg.header)
        if extra is not None:
            try:
                readings += parse_readings([extra])
            except ReadingsError:
                pass
        self.store.update(node, self.clock.seconds(), msg.header, readings)
        self.counters["stats_frames"] += 1

    def external(self, sock: Any, msg: Frame) -> None:
        """READINGS from a source that is not a node (the testbed's link poller)."""
        source = msg.get("source")
        if not isinstance(source, str) or not 0 < len(source) <= 64 or source in self.up():
            sock.send({"type": "ERROR", "id": msg.get("id"),
                       "error": "READINGS needs a source name (at most 64 characters) that "
                                "is not a node's"})
            return
        try:
            readings = parse_readings(msg.get("readings"))
        except ReadingsError as e:
            sock.send({"type": "ERROR", "id": msg.get("id"), "error": f"bad readings: {e}"})
            return
        self.store.update(source, self.clock.seconds(), msg.header, readings, external=True)
        sock.send({"type": "REPLY", "id": msg.get("id"), "ok": True})

    # -- one aggregate per interval ---------------------------------------------------

    def up(self) -> dict[str, bool]:
        return {r.name: bool(r.up) for r in self.nodes if r.registered}

    def links(self) -> LinkMap:
        """The link map, rebuilt when a node's interfaces changed."""
        records = [r for r in self.nodes if r.registered]
        key = tuple((r.name, id(r.interfaces)) for r in records)
        if key != self._links_key:
            self._links = LinkMap.build(((r.name, r.interfaces) for r in records),
                                        self.link_names)
            self._links_key = key
        return self._links

    def aggregate(self, now: float) -> dict[str, Any]:
        view = View(self.store, self.links(), self.up(), now)
        result: dict[str, Any] = {"time": round(now, 3), "interval": self.interval}
        for aggregator in self.aggregators:
            try:
                part = aggregator.aggregate(view, now)
            except Exception:
                self.counters[f"aggregator_errors_{aggregator.NAME}"] += 1
                if self.counters[f"aggregator_errors_{aggregator.NAME}"] in (1, 100, 10000):
                    log.failure("aggregator {name} failed", name=aggregator.NAME)
                continue
            for kind, entities in (part or {}).items():
                merged = result.setdefault(kind, {})
                for name, entity in entities.items():
                    merged.setdefault(name, {}).update(entity)
        return result

    def _to_subscribers(self, header: dict[str, Any]) -> None:
        self.subscribers = {s for s in self.subscribers if self._alive(s)}
        if self.subscribers:
            frame = encode_frame(header)
            for session in self.subscribers:
                session.send_raw(frame)

    def doUpdates(self) -> None:
        """SEER's doUpdates: this interval's aggregate, kept and handed to every sink."""
        aggregate = self.aggregate(self.clock.seconds())
        self.latest = aggregate
        self.history.add(aggregate)
        self._to_subscribers({"type": "AGGREGATE", "aggregate": aggregate})
        for sink in list(self.sinks):
            try:
                sink.update(aggregate)
            except Exception:
                log.failure("stats sink {sink} failed", sink=sink)

    # -- the command log ---------------------------------------------------------------

    def command_done(self, message: dict[str, Any], serial: int, nodes: list[str],
                     outcomes: dict[str, Any], sent_at: float) -> None:
        """A command's outcomes are all in (or timed out): log it."""
        counts = Counter(o.get("status", "?") for o in outcomes.values())
        first_error = next((o.get("error") for o in outcomes.values()
                            if o.get("status") in ("failed", "unconfirmed") and o.get("error")),
                           "")
        entry = {"time": round(sent_at, 3), "done": round(self.clock.seconds(), 3),
                 "serial": serial, "sender": message.get("origin", ""),
                 "type": message.get("type", ""), "agent": message.get("agent", ""),
                 "group": message.get("group", ""),
                 "command": message.get("command") or message.get("name") or "",
                 "target": message.get("target"), "nodes": len(nodes),
                 "counts": dict(counts), "first_error": str(first_error)[:300]}
        self.commands.append(entry)
        self._to_subscribers({"type": "COMMAND_LOG", "entry": entry})
        for sink in list(self.sinks):
            try:
                sink.command(entry)
            except Exception:
                log.failure("stats sink {sink} failed", sink=sink)

    # -- client requests -----------------------------------------------------------------

    def request(self, sock: Any, msg: Frame, metrics_url: str | None) -> None:
        """STATS: the current aggregate; ``history`` seconds of history (for
        the keys starting with ``prefixes``); the last ``commands`` entries
        of the command log; ``subscribe``: AGGREGATE and COMMAND_LOG frames
        from now on."""
        history, commands = msg.get("history", 0), msg.get("commands", 0)
        prefixes = msg.get("prefixes") or []
        if isinstance(history, bool) or not isinstance(history, (int, float)) \
                or not 0 <= history <= 86400:
            return self._refuse(sock, msg, "history must be seconds, 0 to 86400")
        if isinstance(commands, bool) or not isinstance(commands, int) \
                or not 0 <= commands <= COMMANDS_KEPT:
            return self._refuse(sock, msg, f"commands must be a count, 0 to {COMMANDS_KEPT}")
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            return self._refuse(sock, msg, "prefixes must be a list of strings, "
                                           "e.g. [\"links/\"]")
        reply: dict[str, Any] = {"type": "REPLY", "id": msg.get("id"), "interval": self.interval,
                                 "aggregate": self.latest or self.aggregate(
                                     self.clock.seconds()),
                                 "metrics": metrics_url}
        if history:
            reply["history"] = self.history.query(self.clock.seconds() - history, prefixes)
        if commands:
            reply["commands"] = list(self.commands)[-commands:]
        if msg.get("subscribe"):
            self.subscribers.add(sock)
        sock.send(reply)
        return None

    def _refuse(self, sock: Any, msg: Frame, error: str) -> None:
        sock.send({"type": "ERROR", "id": msg.get("id"), "error": f"STATS: {error}"})

    def forget_node(self, name: str) -> None:
        self.store.forget(name)

