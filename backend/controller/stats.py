"""The controller's stats: the pipeline, its sinks and its HTTP port, as one child service.

:class:`StatsService` holds the :class:`~backend.controller.aggregators.
pipeline.StatsPipeline` (readings, aggregates, history, command log), the
run records, the Prometheus registry and -- when the ``http`` setting is
not empty -- the HTTP port serving ``/metrics`` (:mod:`~backend.controller.
web`).  Its children are the aggregation duty (``doUpdates`` every
interval) and the HTTP port; the Controller adds it as a child of its own
and routes the STATS, READINGS and node STATS frames to it.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service

from backend.controller.aggregators.pipeline import StatsPipeline
from backend.controller.ports import Duty
from backend.controller.runrecord import RunRecords
from backend.net.session import FrameSession
from seer.config import ConfigError, parse_hostport
from seer.protocol.wire import Frame


def _check_link_names(names: dict[str, str]) -> None:
    """A user's mistake in link_names is a start-up error that names it."""
    import ipaddress

    for subnet, name in names.items():
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise ConfigError(f"link_names: {subnet!r} is not a subnet (give SUBNET=NAME, "
                              f"e.g. 198.18.1.0/24=lan1)") from None
        if not name:
            raise ConfigError(f"link_names: {subnet} has no name (give SUBNET=NAME)")


class StatsService(service.MultiService):
    def __init__(self, controller: Any, *, http: str = "127.0.0.1:0", http_url: str = "",
                 interval: float = 1.0, history: float = 600.0,
                 link_names: dict[str, str] | None = None, aggregator_dirs: list[str] = (),
                 max_series: int = 100_000) -> None:
        super().__init__()
        self.setName("stats")
        _check_link_names(link_names or {})
        self.controller = controller
        reactor = controller.reactor
        self.pipeline = StatsPipeline(
            reactor, controller.nodes, interval=interval, history=history,
            link_names=link_names, aggregator_dirs=list(aggregator_dirs), max_series=max_series,
            alive=lambda session: session in controller.client_sessions)
        self.records = RunRecords()
        self.pipeline.sinks.append(self.records)
        Duty("aggregate", interval, self.pipeline.doUpdates, reactor).setServiceParent(self)
        self.web: Any = None
        if http:
            # Imported here: twisted.web and prometheus-client cost ~4 MB, for a
            # controller with an HTTP port only (tests build many without).
            from backend.controller.metrics import registry_for
            from backend.controller.web import WebService

            host, port = parse_hostport(http, "http")
            self.web = WebService(reactor, host, port, registry_for(self.pipeline, max_series),
                                  http_url)
            self.web.setServiceParent(self)

    @property
    def metrics_url(self) -> str | None:
        """Where Prometheus scrapes this controller (None without an HTTP port)."""
        url = self.web.url if self.web is not None else None
        return f"{url}/metrics" if url else None

    def stopService(self) -> Any:
        self.records.close_all()
        return super().stopService()

    # -- frames the controller routes here ----------------------------------------------

    def node_stats(self, sock: FrameSession, msg: Frame) -> None:
        """A node's STATS frame: its pollers' readings."""
        self.pipeline.node_frame(sock, msg)

    def readings(self, sock: FrameSession, msg: Frame) -> None:
        """READINGS: an experimenter's readings for what no node sees (the testbed's links)."""
        self.pipeline.external(sock, msg)

    def request(self, sock: FrameSession, msg: Frame) -> None:
        """STATS: the current aggregate, history, command log; or a subscription."""
        self.pipeline.request(sock, msg, self.metrics_url)
