"""The Prometheus exposition of the experiment's readings (``/metrics``).

Every series a node read is a metric ``seer_<poller>_<value>`` with the
node's labels plus ``node`` and, for an interface (or its qdisc), the
``link`` it is on: ``seer_interface_transmit_bytes_total{node="client1",
interface="eth1", link="lan1"}``.  Counters stay counters (``_total``):
Prometheus computes the rates.  Each sample carries the time the node took
it (its clock): SEER is a proxy for readings taken elsewhere, and a
reading scraped one interval late must not bend ``rate()``.

prometheus-client writes the format (text, or OpenMetrics when asked);
nothing here hand-writes it.  At most ``max_series`` samples are exposed;
the rest are counted in ``seer_metrics_dropped_series``.
"""

from __future__ import annotations

from typing import Any, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from seer.protocol.stats import is_counter, metric_name

HELP = "{value} from the {poller} poller of each node (docs/STATS.md)"
#: The controller's own metrics: name -> (type, labels, unit, help).
OWN_METRICS = {
    "seer_node_up": ("gauge", ("node",), "boolean", "1 while the node's daemon is connected"),
    "seer_node_stats_age_seconds": ("gauge", ("node",), "seconds",
                                    "since the node's last STATS frame"),
    "seer_metrics_dropped_series": ("gauge", (), "series",
                                    "series left out of this exposition (over the limit)"),
}


class SeerCollector:
    """A prometheus-client collector over the stats pipeline's readings."""

    def __init__(self, pipeline: Any, max_series: int = 50_000) -> None:
        self.pipeline = pipeline
        self.max_series = max_series

    def collect(self) -> Iterator[Any]:
        store = self.pipeline.store
        links = self.pipeline.links()
        samples: dict[str, list[tuple[dict[str, str], float, float]]] = {}
        count = dropped = 0
        for source in list(store.sources.values()):
            for (poller, labels), values in source.series.items():
                base = dict(labels)
                base["node"] = source.name
                if "interface" in base and "link" not in base:
                    base["link"] = links.link_of(source.name, base["interface"]) or ""
                for value_name, series in values.items():
                    if count >= self.max_series:
                        dropped += 1
                        continue
                    count += 1
                    samples.setdefault(metric_name(poller, value_name), []).append(
                        (base, series.value, series.t))
        for name in sorted(samples):
            entries = samples[name]
            label_names = sorted({k for labels, _, _ in entries for k in labels})
            poller, _, value = name[len("seer_"):].partition("_")
            if is_counter(name):
                family: Any = CounterMetricFamily(name[: -len("_total")],
                                                  HELP.format(value=value, poller=poller),
                                                  labels=label_names)
            else:
                family = GaugeMetricFamily(name, HELP.format(value=value, poller=poller),
                                           labels=label_names)
            for labels, number, t in entries:
                family.add_metric([labels.get(k, "") for k in label_names], number, timestamp=t)
            yield family
        up = GaugeMetricFamily("seer_node_up", OWN_METRICS["seer_node_up"][3], labels=["node"])
        age = GaugeMetricFamily("seer_node_stats_age_seconds",
                                OWN_METRICS["seer_node_stats_age_seconds"][3], labels=["node"])
        now = self.pipeline.clock.seconds()
        for name, is_up in sorted(self.pipeline.up().items()):
            up.add_metric([name], 1.0 if is_up else 0.0)
            source = store.sources.get(name)
            if source is not None:
                age.add_metric([name], round(source.age(now), 3))
        yield up
        yield age
        dropped_family = GaugeMetricFamily(
            "seer_metrics_dropped_series", OWN_METRICS["seer_metrics_dropped_series"][3])
        dropped_family.add_metric([], dropped + store.refused_series)
        yield dropped_family


def registry_for(pipeline: Any, max_series: int = 50_000) -> CollectorRegistry:
    """A registry with only SEER's collector (no process metrics of the controller)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SeerCollector(pipeline, max_series))
    return registry
