"""The aggregators every controller runs: rates per interface, link, node and agent group.

Rates are in bits (``_bps``) or packets (``_pps``) per second, from the
interface counters the nodes read -- whole frames, link-layer headers
included.  A link's ``bps`` is what its members sent onto it (for a LAN,
all of them; a frame crosses a LAN once); its queue fields come from the
qdiscs on its members' interfaces and, on a testbed, the LAN bridge's
ports the testbed polls.  Only live nodes' readings count: a node whose
readings stopped shows ``stale`` and adds nothing to its links.
"""

from __future__ import annotations

from typing import Any

from backend.controller.aggregators.base import Aggregator, View, rate, value

BITS = 8.0


def _entities(kind: str, table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {kind: table} if table else {}


class InterfaceAggregator(Aggregator):
    NAME = "interfaces"
    FIELDS = {"interfaces": {
        "rx_bps": ("bit/s", "received, link-layer headers included"),
        "tx_bps": ("bit/s", "sent, link-layer headers included"),
        "rx_pps": ("packets/s", "received"),
        "tx_pps": ("packets/s", "sent"),
        "drops_ps": ("packets/s", "dropped by the interface, both ways"),
        "errors_ps": ("packets/s", "errors, both ways"),
        "qdisc_backlog_bytes": ("bytes", "queued in the interface's qdiscs now"),
        "qdisc_drops_ps": ("packets/s", "dropped by the interface's qdiscs"),
        "rate_limit_bps": ("bit/s", "the shaping rate of its qdisc (tbf), if any"),
    }}

    def aggregate(self, view: View, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        table: dict[str, dict[str, Any]] = {}
        for source, labels, values in view.series("interface"):
            iface = labels.get("interface", "")
            table[f"{source.name}/{iface}"] = {
                "node": source.name, "interface": iface,
                "link": view.links.link_of(source.name, iface),
                "rx_bps": rate(values, "receive_bytes_total") * BITS,
                "tx_bps": rate(values, "transmit_bytes_total") * BITS,
                "rx_pps": rate(values, "receive_packets_total"),
                "tx_pps": rate(values, "transmit_packets_total"),
                "drops_ps": rate(values, "receive_drops_total")
                + rate(values, "transmit_drops_total"),
                "errors_ps": rate(values, "receive_errors_total")
                + rate(values, "transmit_errors_total"),
            }
        for source, labels, values in view.series("qdisc"):
            entry = table.get(f"{source.name}/{labels.get('interface', '')}")
            if entry is None:
                continue
            entry["qdisc_backlog_bytes"] = entry.get("qdisc_backlog_bytes", 0) \
                + value(values, "backlog_bytes")
            entry["qdisc_drops_ps"] = entry.get("qdisc_drops_ps", 0) + rate(values, "drops_total")
            limit = value(values, "rate_limit_bytes_per_second") * BITS
            if limit:
                entry["rate_limit_bps"] = min(limit, entry.get("rate_limit_bps", limit))
        return _entities("interfaces", table)


class LinkAggregator(Aggregator):
    NAME = "links"
    FIELDS = {"links": {
        "bps": ("bit/s", "what the members sent onto the link, link-layer headers included"),
        "pps": ("packets/s", "packets the members sent onto the link"),
        "drops_ps": ("packets/s", "dropped on the link: members' interfaces and queues"),
        "backlog_bytes": ("bytes", "queued for the link now, in every queue that feeds it"),
        "capacity_bps": ("bit/s", "the link's shaping rate, if it is shaped"),
        "utilization": ("fraction", "the busiest shaped queue's sending rate over its rate"),
        "members": ("count", "members (2 for a point-to-point link)"),
        "stale_members": ("count", "members whose readings stopped"),
    }}

    def aggregate(self, view: View, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        table: dict[str, dict[str, Any]] = {}
        for name, link in view.links.links.items():
            table[name] = {"kind": link.kind, "subnet": link.subnet,
                           "members": len(link.members), "bps": 0.0, "pps": 0.0,
                           "drops_ps": 0.0, "backlog_bytes": 0.0, "stale_members": 0,
                           "ends": {}}
            for node, _ in link.members:
                if not view.live(node):
                    table[name]["stale_members"] += 1
        shaped: dict[str, list[tuple[float, float]]] = {}
        for source, labels, values in view.series("interface"):
            link = view.links.link_of(source.name, labels.get("interface", ""))
            if link not in table:
                continue
            entry = table[link]
            tx = rate(values, "transmit_bytes_total") * BITS
            entry["bps"] += tx
            entry["pps"] += rate(values, "transmit_packets_total")
            entry["drops_ps"] += rate(values, "receive_drops_total") \
                + rate(values, "transmit_drops_total")
            entry["ends"][source.name] = {"interface": labels.get("interface"), "tx_bps": tx,
                                          "rx_bps": rate(values, "receive_bytes_total") * BITS}
        for source, labels, values in view.series("qdisc"):
            link = labels.get("link") if source.external else \
                view.links.link_of(source.name, labels.get("interface", ""))
            if link not in table:
                continue
            entry = table[link]
            entry["backlog_bytes"] += value(values, "backlog_bytes")
            entry["drops_ps"] += rate(values, "drops_total")
            limit = value(values, "rate_limit_bytes_per_second") * BITS
            if limit:
                shaped.setdefault(link, []).append((rate(values, "sent_bytes_total") * BITS,
                                                    limit))
        for link, queues in shaped.items():
            table[link]["capacity_bps"] = min(limit for _, limit in queues)
            table[link]["utilization"] = max(sent / limit for sent, limit in queues)
        return _entities("links", table)


class NodeAggregator(Aggregator):
    NAME = "nodes"
    FIELDS = {"nodes": {
        "live": ("boolean", "1 while the node's readings come (state: live, stale or down)"),
        "age": ("seconds", "since the node's last STATS frame"),
        "rx_bps": ("bit/s", "received on all its experiment interfaces"),
        "tx_bps": ("bit/s", "sent on all its experiment interfaces"),
        "cpu_percent": ("% of all CPUs", "the host's CPU use, as the node sees it"),
        "memory_used_bytes": ("bytes", "the host's memory in use"),
        "load1": ("processes", "the host's 1-minute load average"),
        "pollers_cpu_percent": ("% of a core", "CPU the node's pollers use"),
        "no_response": ("count", "readings that did not come, all pollers"),
    }}

    def aggregate(self, view: View, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        table: dict[str, dict[str, Any]] = {}
        names = set(view.up) | {s.name for s in view.sources() if not s.external}
        for name in sorted(names):
            source = view.store.sources.get(name)
            state = view.state(name)
            table[name] = {"state": state, "live": state == "live",
                           "age": round(source.age(now), 3) if source else None}
        for source, _, values in view.series("interface"):
            entry = table.get(source.name)
            if entry is not None:
                for field, counter in (("rx_bps", "receive_bytes_total"),
                                       ("tx_bps", "transmit_bytes_total")):
                    entry[field] = entry.get(field, 0.0) + rate(values, counter) * BITS
        for source, _, values in view.series("host"):
            entry = table.get(source.name)
            if entry is None:
                continue
            cpus = value(values, "cpus") or 1.0
            entry["cpu_percent"] = rate(values, "cpu_busy_seconds_total") / cpus * 100
            entry["memory_used_bytes"] = value(values, "memory_total_bytes") \
                - value(values, "memory_available_bytes")
            entry["load1"] = value(values, "load1")
        for source, _, values in view.series("poller"):
            entry = table.get(source.name)
            if entry is not None:
                entry["pollers_cpu_percent"] = entry.get("pollers_cpu_percent", 0.0) \
                    + rate(values, "cpu_seconds_total") * 100
                entry["no_response"] = entry.get("no_response", 0) \
                    + value(values, "no_response_total")
        return _entities("nodes", table)


class GroupAggregator(Aggregator):
    NAME = "groups"
    FIELDS = {"groups": {
        "nodes": ("count", "nodes that have the group"),
        "running": ("count", "nodes where its run is under way"),
        "counters": ("count", "each counter summed over the nodes (counters.NAME)"),
        "rates": ("per second", "each counter's rate summed over the nodes (rates.NAME)"),
        "cpu_percent": ("% of a core", "CPU of the group's processes, all nodes"),
        "resident_bytes": ("bytes", "resident memory of the group's processes, all nodes"),
        "processes": ("count", "the group's processes alive, all nodes"),
    }}

    def aggregate(self, view: View, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        table: dict[str, dict[str, Any]] = {}

        def entry(labels: dict[str, str]) -> dict[str, Any]:
            key = f"{labels.get('agent', '')}/{labels.get('group', '')}"
            if key not in table:
                table[key] = {"agent": labels.get("agent"), "group": labels.get("group"),
                              "nodes": 0, "running": 0, "counters": {}, "rates": {}}
            return table[key]

        for _, labels, values in view.series("agent"):
            group = entry(labels)
            counter = labels.get("counter")
            if counter is None:
                group["nodes"] += 1
                group["running"] += int(value(values, "running"))
            else:
                group["counters"][counter] = group["counters"].get(counter, 0) \
                    + value(values, "counter_total")
                group["rates"][counter] = group["rates"].get(counter, 0.0) \
                    + rate(values, "counter_total")
        for _, labels, values in view.series("process"):
            group = entry(labels)
            group["cpu_percent"] = group.get("cpu_percent", 0.0) \
                + rate(values, "cpu_seconds_total") * 100
            group["resident_bytes"] = group.get("resident_bytes", 0) + value(values,
                                                                             "resident_bytes")
            group["processes"] = group.get("processes", 0) + value(values, "running")
        return _entities("groups", table)


SHIPPED = (InterfaceAggregator, LinkAggregator, NodeAggregator, GroupAggregator)
