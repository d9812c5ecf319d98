"""The experiment's topology as the dashboard draws it: nodes, LANs and point-to-point links.

From a topology file when the controller has one (its ``topology``
setting: the JSON the testbed writes, in the shape of
``seer.testbed.topology.describe`` -- docs/DASHBOARD.md), else inferred
from the nodes' interfaces: addresses in one subnet are one link or LAN,
exactly as the stats pipeline's link map finds them, so the names are the
aggregate's.  Either way every node the controller knows is drawn, also one
with no link (a loopback experiment's daemons have none), and a node that
registered without being in the file is added.

Pure: plain data in, plain data out (JSON for the page).  The file is read
once, when the controller is built, before the reactor runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable

#: tc's rate units (the testbed's ``bandwidth``): bits, or bytes ("bps") per second.
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$", re.I)
_SCALE = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9,
          "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}


class TopologyFileError(ValueError):
    """A topology file the dashboard cannot use; the message names the file and why."""


def rate_bps(text: Any) -> float | None:
    """``"20mbit"`` -> 20e6 bit/s; None for no (or an unreadable) rate."""
    if not isinstance(text, str):
        return None
    match = _RATE.match(text.strip())
    return float(match.group(1)) * _SCALE[match.group(2).lower()] if match else None


def load_file(path: str | Path) -> dict[str, Any]:
    """A topology file's nodes and networks, checked; TopologyFileError says what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise TopologyFileError(f"topology {path}: cannot read it ({e.strerror})") from None
    except ValueError as e:
        raise TopologyFileError(f"topology {path} is not JSON: {e}") from None
    return parse(data, str(path))


def parse(data: Any, source: str = "topology") -> dict[str, Any]:
    """Check a described topology: ``{"nodes": {NAME: {...}}, "networks": {NAME: {...}}}``."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict) \
            or not isinstance(data.get("networks", {}), dict):
        raise TopologyFileError(f"{source}: give an object with \"nodes\" (an object of "
                                f"nodes by name) and \"networks\" (LANs and links by name)")
    nodes = []
    for name, spec in data["nodes"].items():
        spec = spec if isinstance(spec, dict) else {}
        role = (spec.get("attributes") or {}).get("role") if isinstance(
            spec.get("attributes"), dict) else None
        nodes.append({"name": str(name), "router": bool(spec.get("router")) or role == "router"})
    known = {n["name"] for n in nodes}
    links = []
    for name, spec in data.get("networks", {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("members"), list):
            raise TopologyFileError(f"{source}: network {name!r} needs \"members\", a list of "
                                    f"{{\"node\": NAME}}")
        members = [m.get("node") if isinstance(m, dict) else m for m in spec["members"]]
        strange = [m for m in members if m not in known]
        if strange:
            raise TopologyFileError(f"{source}: network {name!r} lists {strange[0]!r}, which "
                                    f"is not one of its nodes")
        links.append({"name": str(name), "kind": "link" if spec.get("kind") == "link" else "lan",
                      "subnet": str(spec.get("subnet") or ""),
                      "bandwidth_bps": rate_bps(spec.get("bandwidth")),
                      "members": members})
    return {"source": "file", "nodes": nodes, "links": links}


def infer(link_map: Any, names: Iterable[str]) -> dict[str, Any]:
    """The topology the nodes' interfaces give (no file): the stats link map's
    links, and every known node; a node on two or more links is drawn as a router."""
    links = []
    degree: dict[str, int] = {}
    for name, link in sorted(link_map.links.items()):
        members = list(dict.fromkeys(node for node, _ in link.members))
        for node in members:
            degree[node] = degree.get(node, 0) + 1
        links.append({"name": name, "kind": link.kind, "subnet": link.subnet,
                      "bandwidth_bps": None, "members": members})
    nodes = [{"name": n, "router": degree.get(n, 0) >= 2} for n in sorted(set(names))]
    return {"source": "inferred", "nodes": nodes, "links": links}


def with_nodes(topology: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The topology with every node in ``names`` (a registered node missing from a
    file is drawn, with no link), and its version: a digest the page compares
    with each second's to know when to fetch it again."""
    drawn = {n["name"] for n in topology["nodes"]}
    extra = [{"name": n, "router": False} for n in sorted(set(names) - drawn)]
    result = dict(topology, nodes=topology["nodes"] + extra)
    body = json.dumps([result["nodes"], result["links"]], sort_keys=True).encode()
    result["version"] = hashlib.sha256(body).hexdigest()[:12]
    return result
