"""What `seer testbed status` and `seer testbed inspect` show about a testbed,
gathered into plain data (their ``--json``) and rendered as text.

``status``: is it up, its supervisor, each process's state, PID and
restarts, and -- from the controller -- each node's registration and last
serial.  ``inspect`` (containerlab's inspect in spirit): everything a user
may want to look up or script against -- nodes with their namespace,
addresses, interfaces, routes and process; the LANs and links with their
subnets and shaping; the namespaces; every process with its PID.
"""

from __future__ import annotations

import time
from typing import Any

from seer.testbed import build, pids, runner, state


def _nodes_from_controller(testbed: dict[str, Any]) -> tuple[dict[str, dict], str | None]:
    """name -> {up, serial} from the controller's node table; or the reason there is none."""
    client = testbed.get("client")
    if not testbed.get("up") or not client:
        return {}, "the testbed is not up"
    from seer.client import Experiment, SeerError

    try:
        with Experiment(client["controller"], client["certs"], client["identity"],
                        timeout=5.0) as exp:
            table = exp.node_table()
    except SeerError as e:
        return {}, f"controller not answering: {e}"
    return {n["name"]: {"up": bool(n.get("up")), "serial": n.get("serial")}
            for n in table.get("nodes", [])}, None


def _supervisor(testbed: dict[str, Any]) -> dict[str, Any]:
    record = pids.Record.from_json(testbed.get("supervisor"))
    if record is None:
        return {"pid": None, "running": False}
    return {"pid": record.pid, "start": record.start, "running": pids.is_running(record)}


def status(name: str) -> dict[str, Any]:
    """The testbed's status as plain data."""
    testbed = state.read(name) or {}
    nodes, why = _nodes_from_controller(testbed)
    return {
        "name": name, "up": bool(testbed.get("up")),
        "namespaces": len(build.testbed_namespaces(name)),
        "supervisor": _supervisor(testbed),
        "control_loss": testbed.get("control_loss", 0.0),
        "processes": runner.process_table(name),
        "nodes": nodes, "controller_error": why,
        "addresses": testbed.get("addresses", {}),
    }


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.0f} h"


def render_status(s: dict[str, Any]) -> str:
    supervisor = s["supervisor"]
    head = (f"testbed {s['name']}: {'up' if s['up'] else 'not up'}, {s['namespaces']} namespaces, "
            + (f"supervisor pid {supervisor['pid']}" if supervisor["running"]
               else "supervisor NOT running: nothing restarts its processes; "
                    f"`seer testbed down {s['name']}`, then up again")
            + (f", control loss {s['control_loss']:.0%}" if s.get("control_loss") else ""))
    lines = [head]
    rows = [("PROCESS", "STATE", "PID", "RESTARTS", "NODE", "SERIAL", "NOTE")]
    for name, p in s["processes"].items():
        node = s["nodes"].get(name)
        note = []
        if p.get("state") == "running" and p.get("uptime") is not None:
            note.append(f"up {_ago(p['uptime'])}")
        if p.get("next_start_in") is not None:
            note.append(f"restarts in {p['next_start_in']:g} s")
        if p.get("last_exit") and p.get("restarts"):
            note.append(f"last exit: {p['last_exit']}")
        addresses = " ".join(s["addresses"].get(name, []))
        if addresses:
            note.append(addresses)
        rows.append((name, p.get("state", "?"), str(p.get("pid") or "-"),
                     str(p.get("restarts", 0)),
                     "" if node is None else ("up" if node["up"] else "DOWN"),
                     "" if node is None or node.get("serial") is None else str(node["serial"]),
                     ", ".join(note)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        lines.append("  " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths))
                     + "  " + row[-1])
    if s.get("controller_error") and s["up"]:
        lines.append(f"  ({s['controller_error']})")
    return "\n".join(line.rstrip() for line in lines)


def inspect(name: str) -> dict[str, Any]:
    """Everything about the testbed, as plain data (see the module docstring)."""
    testbed = state.read(name) or {}
    topology = testbed.get("topology") or {"nodes": {}, "networks": {}}
    table = runner.process_table(name)
    existing = set(build.testbed_namespaces(name))

    def process(program: str) -> dict[str, Any]:
        p = table.get(program, {})
        return {k: p.get(k) for k in ("state", "pid", "start", "restarts", "last_exit", "log")}

    nodes = []
    for node, info in topology["nodes"].items():
        namespace = build.node_ns(name, node)
        nodes.append({"name": node, "namespace": namespace,
                      "namespace_exists": namespace in existing,
                      "router": info.get("router", False), "attributes": info.get("attributes", {}),
                      "labels": info.get("labels", []),
                      "control_address": info.get("control_address"),
                      "interfaces": info.get("interfaces", []), "routes": info.get("routes", []),
                      "process": process(node)})
    networks = [{"name": n, **info} for n, info in topology["networks"].items()]
    return {
        "name": name, "up": bool(testbed.get("up")), "folder": testbed.get("folder"),
        "created": testbed.get("created"), "control_network": topology.get("control"),
        "controller": {"namespace": build.controller_ns(name),
                       "address": testbed.get("control"), "group": testbed.get("group"),
                       "relay": (testbed.get("client") or {}).get("controller"),
                       "process": process("controller"), "relay_process": process("relay")},
        "switch": {"namespace": build.switch_ns(name)},
        "nodes": nodes, "networks": networks,
        "namespaces": sorted(existing),
        "supervisor": _supervisor(testbed),
        "processes": table,
    }


def render_inspect(i: dict[str, Any]) -> str:
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(i["created"])) \
        if i.get("created") else "?"
    controller = i["controller"]
    lines = [f"testbed {i['name']} ({'up' if i['up'] else 'not up'}, made {created}; "
             f"state in {i['folder']})",
             f"controller {controller['address']} in {controller['namespace']}, pid "
             f"{controller['process'].get('pid') or '-'}; clients reach it at "
             f"{controller['relay']} (relay pid {controller['relay_process'].get('pid') or '-'}); "
             f"group {controller['group']}",
             ""]
    rows = [("NODE", "NAMESPACE", "PID", "STATE", "CONTROL", "INTERFACES")]
    for n in i["nodes"]:
        interfaces = ", ".join(f"{x['name']} {x['address']} ({x['network']})"
                               for x in n["interfaces"])
        rows.append((n["name"] + (" (router)" if n["router"] else ""), n["namespace"],
                     str(n["process"].get("pid") or "-"), n["process"].get("state") or "-",
                     n["control_address"] or "", interfaces))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]) - 1)]
    lines += ["  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    lines.append("")
    for net in i["networks"]:
        shaping = ", ".join(x for x in (net.get("bandwidth"), net.get("delay") and
                                        f"delay {net['delay']}", net.get("loss") and
                                        f"loss {net['loss']:.1%}") if x)
        members = ", ".join(f"{m['node']}:{m['interface']} {m['address'].split('/')[0]}"
                            for m in net["members"])
        lines.append(f"{net['kind']} {net['name']} {net['subnet']}"
                     + (f" [{shaping}]" if shaping else "") + f": {members}")
    return "\n".join(line.rstrip() for line in lines)
