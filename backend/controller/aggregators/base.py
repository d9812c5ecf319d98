"""The Aggregator base class (SEER's name) and what an aggregator sees.

Every interval the controller asks each aggregator for its part of the
interval's aggregate: ``aggregate(view, now)`` returns ``{kind: {name:
entity}}`` -- ``{"links": {"servers": {"bps": ..., ...}}}`` -- and the parts
are merged (an aggregator may add fields to another's entities, or kinds of
its own).  An entity is a JSON object; its numbers (and those of objects
one level down) go into the history and the run records.

The :class:`View` gives the readings (latest value, rate, time) of every
source, which sources are live, and which link an interface is on.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

from backend.controller.aggregators.links import LinkMap
from backend.controller.aggregators.store import ReadingStore, Series, Source

#: A source whose last frame is older than this many of its intervals is stale.
STALE_AFTER = 3.0


class View:
    """One interval's view of the readings, for the aggregators."""

    def __init__(self, store: ReadingStore, links: LinkMap, up: dict[str, bool],
                 now: float) -> None:
        self.store = store
        self.links = links
        #: Registered nodes: whether each is up (its link to the controller).
        self.up = up
        self.now = now

    def state(self, name: str) -> str:
        """A node's stats state: ``live`` (readings coming), ``stale`` (they
        stopped, or never came) or ``down`` (its daemon is not connected)."""
        if name in self.up and not self.up[name]:
            return "down"
        source = self.store.sources.get(name)
        if source is None or source.age(self.now) > STALE_AFTER * source.interval:
            return "stale"
        return "live"

    def live(self, name: str) -> bool:
        return self.state(name) == "live"

    def sources(self) -> Iterator[Source]:
        return iter(list(self.store.sources.values()))

    def series(self, poller: str, live_only: bool = True
               ) -> Iterator[tuple[Source, dict[str, str], dict[str, Series]]]:
        """(source, labels, values) of one poller's series across sources."""
        for source in self.sources():
            if live_only and not self.live(source.name):
                continue
            for labels, values in source.of(poller):
                yield source, labels, values


def rate(values: dict[str, Series], name: str) -> float:
    """A counter's rate per second (0 when it has none yet)."""
    series = values.get(name)
    return series.rate if series is not None and series.rate is not None else 0.0


def value(values: dict[str, Series], name: str) -> float:
    series = values.get(name)
    return series.value if series is not None else 0.0


class Aggregator:
    """Base of every aggregator: set NAME, implement aggregate."""

    #: Unique name (plug-ins replace a shipped aggregator of the same name).
    NAME: ClassVar[str] = ""
    #: field -> (unit, help) of each kind this aggregator fills, for the docs.
    FIELDS: ClassVar[dict[str, dict[str, tuple[str, str]]]] = {}

    def aggregate(self, view: View, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        raise NotImplementedError
