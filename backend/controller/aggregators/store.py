"""The latest readings of every source, and counters turned into rates.

A source is a node (its STATS frames) or something that reports for the
experiment without being a node (the testbed's link poller, READINGS).
For each series -- (poller, labels, value name) -- the store keeps the last
value and its time by the source's clock, and for counters the rate over
the source's last interval: (v - v') / (t - t').  A counter that went down
restarted (a group's new instance, a re-created interface): no rate for
that interval.  Rates use the sources' own time stamps, so a frame's
travel time does not bend them.

Bounded: at most ``max_series`` series in all; beyond that new series are
refused and counted (``refused_series``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from seer.protocol.stats import is_counter

Labels = tuple[tuple[str, str], ...]


@dataclass
class Series:
    value: float
    t: float
    counter: bool
    rate: float | None = None


@dataclass
class Source:
    """One node's (or external source's) readings."""

    name: str
    #: The controller's clock when its last frame came; the source's own clock then.
    received_at: float = 0.0
    source_time: float = 0.0
    interval: float = 1.0
    frames: int = 0
    #: (poller, labels) -> value name -> Series
    series: dict[tuple[str, Labels], dict[str, Series]] = field(default_factory=dict)
    pollers: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    external: bool = False

    def age(self, now: float) -> float:
        return now - self.received_at

    def of(self, poller: str) -> Iterator[tuple[dict[str, str], dict[str, Series]]]:
        """(labels, values) of every series of one poller."""
        for (name, labels), values in self.series.items():
            if name == poller:
                yield dict(labels), values


class ReadingStore:
    def __init__(self, max_series: int = 100_000) -> None:
        self.sources: dict[str, Source] = {}
        self.max_series = max_series
        self.count = 0
        self.refused_series = 0

    def update(self, name: str, now: float, frame: dict[str, Any],
               readings: list[dict[str, Any]], external: bool = False) -> Source:
        """Take one frame's (checked) readings from source ``name``."""
        source = self.sources.get(name)
        if source is None:
            source = self.sources[name] = Source(name, external=external)
        source.received_at = now
        source_time = frame.get("time")
        if isinstance(source_time, (int, float)) and not isinstance(source_time, bool):
            source.source_time = float(source_time)
        interval = frame.get("interval")
        if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
            source.interval = float(interval)
        pollers = frame.get("pollers")
        if isinstance(pollers, dict):
            source.pollers = {k: v for k, v in pollers.items() if isinstance(v, dict)}
        cpu = frame.get("cpu_seconds_total")
        if isinstance(cpu, (int, float)) and not isinstance(cpu, bool):
            source.cpu_seconds = float(cpu)
        source.frames += 1
        for reading in readings:
            t = reading["t"]
            seen = set()
            for labels, values in reading["series"]:
                key = (reading["poller"], tuple(sorted(labels.items())))
                seen.add(key)
                known = source.series.get(key)
                if known is None:
                    if self.count + len(values) > self.max_series:
                        self.refused_series += len(values)
                        continue
                    known = source.series[key] = {}
                for value_name, value in values.items():
                    series = known.get(value_name)
                    if series is None or not series.counter:
                        if series is None:
                            known[value_name] = Series(float(value), t, is_counter(value_name))
                            self.count += 1
                        elif t >= series.t:
                            series.value, series.t = float(value), t
                        continue
                    # A counter: its rate over the source's last interval (inline:
                    # the controller's hottest loop, 3,000 values a second for 100 nodes).
                    dt = t - series.t
                    if dt > 0:
                        series.rate = (value - series.value) / dt if value >= series.value \
                            else None
                        series.value, series.t = float(value), t
            # A reading is all of its poller's series: those it no longer has are gone
            # (an agent group that ended, an interface removed).
            for key in [k for k in source.series if k[0] == reading["poller"] and k not in seen]:
                self.count -= len(source.series.pop(key))
        return source

    def forget(self, name: str) -> None:
        source = self.sources.pop(name, None)
        if source is not None:
            self.count -= sum(len(v) for v in source.series.values())
