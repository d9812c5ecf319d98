"""The dashboard: the web page of the experiment, wired into the controller.

Built by the Controller when it has an HTTP port (the ``http`` setting):
it mounts its resources at ``/dashboard`` under the stats service's web
root, becomes a sink of the stats pipeline (every aggregate, every
finished command) and a listener of the script runner (every run's output),
answers its node daemons' TAIL frames, and ticks: one ``tick`` event a
second to every open page -- at once when a new aggregate is made, and
from its own timer when none came for a second (so node states keep
moving when stats are slow or off).

Access: a random token per controller start (``secrets.token_urlsafe``),
in the URL :attr:`Dashboard.url` gives and `seer status --json` prints as
``dashboard``.  docs/DASHBOARD.md tells the whole of it.
"""

from __future__ import annotations

import secrets
from typing import Any

from twisted.application import service
from twisted.logger import Logger

from backend.controller.dashboard import details, topology
from backend.controller.dashboard.events import EventStream
from backend.controller.dashboard.live import LiveModel
from backend.controller.dashboard.resources import DashboardRoot, query
from backend.controller.dashboard.runlog import RunLog
from backend.controller.dashboard.tails import Tails
from backend.controller.ports import Duty

log = Logger()

#: Seconds between ticks when no aggregate comes sooner.
TICK = 1.0
#: Commands a page gets when it connects (the event log's first lines).
COMMANDS_AT_HELLO = 200


class Dashboard(service.MultiService):
    def __init__(self, controller: Any, topology_file: str = "", token: str | None = None,
                 tick: float = TICK) -> None:
        super().__init__()
        self.setName("dashboard")
        self.c = controller
        self.clock = controller.reactor
        self.web = controller.stats.web
        self.pipeline = controller.stats.pipeline
        self.token = token or secrets.token_urlsafe(24)
        # A cookie name of its own per start: two controllers on one host
        # (two testbeds) must not overwrite each other's cookie.
        self.cookie = f"seer_dashboard_{secrets.token_hex(4)}"
        self.topology_file = topology_file
        self._file_topology = topology.load_file(topology_file) if topology_file else None
        self._topology: dict[str, Any] | None = None
        self._topology_key: tuple[Any, Any] = ((), None)
        self.tick_interval = tick
        self.live = LiveModel(controller.nodes, self.pipeline, self._serial)
        self.runs = RunLog(self.clock)
        self.tails = Tails(self.clock, controller.node_sessions)
        self.events = EventStream(self._hello)
        self.root = DashboardRoot(self.token, self.cookie, self.events, {
            "topology": lambda request: self.topology(),
            "state": lambda request: self.state(),
            "node": lambda request: self.node(query(request, "name") or ""),
            "logs": lambda request: self.logs(query(request, "node") or ""),
            "link": lambda request: self.link(query(request, "name") or ""),
        })
        self.web.root.putChild(b"dashboard", self.root)
        self.pipeline.sinks.append(self)
        self._last_tick: float | None = None
        self.ticks = 0
        Duty("dashboard-tick", tick, self._timer, self.clock).setServiceParent(self)

    @property
    def url(self) -> str | None:
        """The page's URL with its token (None until the HTTP port listens)."""
        base = self.web.url
        return f"{base}/dashboard/?token={self.token}" if base else None

    def _serial(self) -> int:
        return self.c.comm.sent_serial if self.c.comm is not None else 0

    # -- life cycle -----------------------------------------------------------------

    def startService(self) -> None:
        # The script runner is made when the controller starts, before its children.
        if self.c.scripts is not None and self.runs not in self.c.scripts.listeners:
            self.c.scripts.listeners.append(self.runs)
        super().startService()
        if self.url:  # the port listens by now; the log is the operator's, as Jupyter's is
            log.info("dashboard: {url}", url=self.url)

    def stopService(self) -> Any:
        self.events.close_all()
        self.tails.stop()
        return super().stopService()

    # -- what the routes answer -----------------------------------------------------

    def topology(self) -> dict[str, Any]:
        """The graph to draw; made again only when the nodes or the link map changed
        (each tick gives its version)."""
        names = tuple(r.name for r in self.c.nodes)
        links = self.pipeline.links() if self._file_topology is None else None
        if self._topology is None or self._topology_key[0] != names \
                or self._topology_key[1] is not links:
            drawn = self._file_topology or topology.infer(links, names)
            self._topology = dict(topology.with_nodes(drawn, names), controller=self.c.name)
            self._topology_key = (names, links)
        return self._topology

    def state(self) -> dict[str, Any]:
        now = self.clock.seconds()
        return {"t": round(now, 3), "serial": self._serial(),
                "nodes": self.live.nodes_now(now, remember=False),
                "links": self.live.links_now()}

    def node(self, name: str) -> dict[str, Any] | None:
        record = self.c.nodes.get(name)
        if record is None:
            return None
        now = self.clock.seconds()
        live = self.live.nodes_now(now, remember=False).get(name, {})
        model = self.c.comm.model if self.c.comm is not None else None
        groups = model.snapshot_for(name, now)["groups"] if model is not None else []
        return details.node_detail(record, live, groups, self.pipeline, self.c.jobs)

    def logs(self, node: str) -> Any:
        if self.c.nodes.get(node) is None:
            return None
        return self.tails.ask(node)

    def link(self, name: str) -> dict[str, Any] | None:
        known = {link["name"] for link in self.topology()["links"]}
        if name not in known and name not in ((self.pipeline.latest or {}).get("links") or {}):
            return None
        return details.link_history(self.pipeline, name, self.clock.seconds())

    # -- the live feed --------------------------------------------------------------

    def _hello(self) -> dict[str, Any]:
        now = self.clock.seconds()
        topo = self.topology()
        return {"controller": self.c.name, "epoch": self.c.comm.epoch if self.c.comm else None,
                "interval": self.pipeline.interval, "tick": self.tick_interval,
                "commands": list(self.pipeline.commands)[-COMMANDS_AT_HELLO:],
                "runs": self.runs.hello(),
                "state": self.live.tick(now, topo["version"], remember=False)}

    def tick(self) -> None:
        """One tick to every open page: this second's picture, then the scripts' output."""
        now = self.clock.seconds()
        self._last_tick = now
        if not self.events.clients:
            self.runs.take()  # nobody is watching: what they printed is in their tails
            return
        self.ticks += 1
        self.events.publish("tick", self.live.tick(now, self.topology()["version"]))
        for name, data in self.runs.take():
            self.events.publish(name, data)

    def _timer(self) -> None:
        now = self.clock.seconds()
        if self._last_tick is None or now - self._last_tick >= 0.9 * self.tick_interval:
            self.tick()

    # -- the stats pipeline's sink ---------------------------------------------------

    def update(self, aggregate: dict[str, Any]) -> None:
        """A new aggregate: tick now (the page's rates are at most one interval old)."""
        self.tick()

    def command(self, entry: dict[str, Any]) -> None:
        self.events.publish("command", entry)
