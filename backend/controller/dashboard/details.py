"""What the page's panels ask for: one node's groups, counters and outcomes; one link's history.

A node's panel: its record (state, lag, addresses, interfaces, attributes),
each agent group as the controller's state model has it for that node now
(variables -- a per-node table resolved to the node's value -- and run
state), the group's counters and processes as the node last read them (its
``agent`` and ``process`` pollers), and the node's outcomes of the latest
jobs.  A link's plot: its rate and drops over the history the stats
pipeline keeps (10 minutes).

Pure functions over the controller's tables, answered from memory: nothing
here waits on a node.  The tail of the agent logs, which does, is
:mod:`~backend.controller.dashboard.tails`'.
"""

from __future__ import annotations

from typing import Any

#: Jobs looked through for a node's recent outcomes, and how many are shown.
JOBS_SEARCHED = 200
OUTCOMES_SHOWN = 12
RECORD_FIELDS = ("name", "addresses", "interfaces", "labels", "attributes", "agents",
                 "version", "registered_at", "last_seen", "down_since", "unreachable_since",
                 "serial")


def node_value(value: Any, node: str) -> Any:
    """A variable's value on ``node``: a per-node table's entry (or its ``*``), or the value."""
    if isinstance(value, dict):
        return value.get(node, value.get("*"))
    return value


def group_readings(pipeline: Any, node: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(agent, group) -> {counters, rates, cpu_seconds, resident_bytes, processes}
    from the node's latest readings."""
    source = pipeline.store.sources.get(node)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    if source is None:
        return found
    for poller in ("agent", "process"):
        for labels, values in source.of(poller):
            key = (labels.get("agent", ""), labels.get("group", ""))
            entry = found.setdefault(key, {"counters": {}, "rates": {}})
            if poller == "agent" and "counter" in labels and "counter_total" in values:
                series = values["counter_total"]
                entry["counters"][labels["counter"]] = series.value
                if series.rate is not None:
                    entry["rates"][labels["counter"]] = round(series.rate, 3)
            elif poller == "agent" and "running" in values:
                entry["running"] = bool(values["running"].value)
            elif poller == "process":
                for name, field in (("cpu_seconds_total", "cpu_seconds"),
                                    ("resident_bytes", "resident_bytes"),
                                    ("running", "processes")):
                    if name in values:
                        entry[field] = values[name].value
                if "cpu_seconds_total" in values and values["cpu_seconds_total"].rate is not None:
                    entry["cpu_percent"] = round(100 * values["cpu_seconds_total"].rate, 2)
    return found


def recent_outcomes(jobs: Any, node: str) -> list[dict[str, Any]]:
    """The node's outcomes of the latest jobs that targeted it, newest first."""
    shown = []
    for summary in jobs.recent(JOBS_SEARCHED):
        job = jobs.get(summary["job"])
        outcome = (job or {}).get("outcomes", {}).get(node)
        if outcome is None:
            continue
        shown.append({"job": summary["job"], "time": summary.get("time"),
                      "type": summary.get("type"), "agent": summary.get("agent"),
                      "group": summary.get("group"), "command": summary.get("command"),
                      "sender": summary.get("sender"), "status": outcome.get("status"),
                      "error": outcome.get("error")})
        if len(shown) >= OUTCOMES_SHOWN:
            break
    return shown


def node_detail(record: Any, state: dict[str, Any], groups: list[dict[str, Any]],
                pipeline: Any, jobs: Any) -> dict[str, Any]:
    """Everything the node panel shows but the logs.  ``state`` is the node's
    live entry (its dashboard state, lag, rates); ``groups`` the state
    model's groups for it (GROUPS' answer for one node)."""
    detail = {field: getattr(record, field) for field in RECORD_FIELDS}
    detail["agents"] = sorted(record.agents)
    detail.update(state)
    readings = group_readings(pipeline, record.name)
    shown = []
    for group in groups:
        key = (group["agent"], group["group"])
        entry = {"agent": key[0], "group": key[1], "run": group.get("run"),
                 "why": group.get("why"), "start": group.get("start"),
                 "vars": {name: node_value(value, record.name)
                          for name, value in sorted(group.get("vars", {}).items())}}
        entry.update(readings.pop(key, {"counters": {}, "rates": {}}))
        shown.append(entry)
    # Groups the node reads but the model has none of (SEER's own, say): shown too.
    for (agent, group), entry in sorted(readings.items()):
        shown.append(dict(entry, agent=agent, group=group, run=None, vars={}))
    detail["groups"] = shown
    detail["outcomes"] = recent_outcomes(jobs, record.name) if jobs is not None else []
    return detail


def link_history(pipeline: Any, name: str, now: float, seconds: float = 600.0
                 ) -> dict[str, Any]:
    """{"times", "bps", "drops_ps", "utilization"} of one link over the last ``seconds``."""
    prefix = f"links/{name}/"
    answer = pipeline.history.query(now - seconds, [prefix])
    series = answer["series"]
    return {"name": name, "times": answer["times"],
            "bps": series.get(prefix + "bps", [None] * len(answer["times"])),
            "drops_ps": series.get(prefix + "drops_ps", [None] * len(answer["times"])),
            "utilization": series.get(prefix + "utilization"),
            "capacity_bps": series.get(prefix + "capacity_bps")}
