"""Drawing a topology: Graphviz dot and Mermaid text, and PNG and SVG from dot.

`seer testbed graph FILE-or-NAME` draws every node (routers apart), every
LAN as a shape of its own with its subnet and shaping, each node's
attachment labelled with its interface and address, and every
point-to-point link as a line between its two nodes labelled with its
subnet, shaping and both ends' addresses.  The control network is one line
at the foot of the drawing: it reaches every node, and drawn as a LAN it
would hide the experiment's shape.

The text is made from :func:`seer.testbed.topology.describe`'s plain data
by pure functions; only :func:`render` runs a program (Graphviz's ``dot``,
Debian package ``graphviz``, which scripts/setup-machine installs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: The files `seer testbed graph` writes, by suffix.
FORMATS = ("dot", "mmd", "svg", "png")
_ROUTER, _HOST, _LAN = "#f4c96b", "#d8e6f5", "#eeeeee"


class GraphError(RuntimeError):
    """The drawing could not be made (no Graphviz, or dot failed)."""


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _host(address: str) -> str:
    return address.split("/")[0]


def _shaping(network: dict[str, Any]) -> list[str]:
    parts = []
    if network.get("bandwidth"):
        parts.append(network["bandwidth"])
    if network.get("delay"):
        parts.append(f"delay {network['delay']}")
    if network.get("loss"):
        parts.append(f"loss {network['loss']:.1%}")
    return parts


def _node_label(name: str, node: dict[str, Any]) -> list[str]:
    lines = [name]
    extra = ["router"] if node.get("router") and name != "router" else []
    extra += [f"{k}={v}" for k, v in sorted(node.get("attributes", {}).items())
              if not (k == "role" and v == "router" and node.get("router"))]
    extra += [f"has:{label}" for label in node.get("labels", [])]
    if extra:
        lines.append(" ".join(extra))
    return lines


def _caption(description: dict[str, Any]) -> str:
    return (f"testbed {description['name']}: control network {description['control']} "
            f"(controller {description['controller_address']}) reaches every node")


def _depths(description: dict[str, Any]) -> dict[str, int]:
    """Breadth-first depth of every node ("node:N") and LAN ("net:N") from the
    best-connected router: edges drawn from the shallower end make dot hang
    the experiment from its core instead of laying everything in one row."""
    nodes, networks = description["nodes"], description["networks"]
    around: dict[str, list[str]] = {f"node:{n}": [] for n in nodes}
    for name, network in networks.items():
        ends = [f"node:{m['node']}" for m in network["members"]]
        if network["kind"] == "lan":
            around[f"net:{name}"] = ends
            for end in ends:
                around[end].append(f"net:{name}")
        else:
            a, b = ends
            around[a].append(b)
            around[b].append(a)
    order = sorted(nodes, key=lambda n: (not nodes[n].get("router"),
                                         -len(nodes[n].get("interfaces", []))))
    depth: dict[str, int] = {}
    for root in (f"node:{n}" for n in order):
        if root in depth:
            continue
        depth[root] = 0
        queue = [root]
        while queue:
            here = queue.pop(0)
            for there in around.get(here, []):
                if there not in depth:
                    depth[there] = depth[here] + 1
                    queue.append(there)
    return depth


def _edge(depth: dict[str, int], a: str, b: str) -> tuple[str, str, bool]:
    """(from, to, swapped): the shallower end first."""
    if depth.get(a, 0) <= depth.get(b, 0):
        return a, b, False
    return b, a, True


def to_dot(description: dict[str, Any]) -> str:
    """The topology as a Graphviz graph (undirected)."""
    out = [f"graph {_dot_string(description['name'])} {{",
           f"  graph [label={_dot_string(_caption(description))}, labelloc=b, fontsize=10, "
           'fontname="Helvetica", pad=0.3, nodesep=0.5, ranksep=0.7];',
           '  node [fontname="Helvetica", fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=9, color="#666666"];']
    depth = _depths(description)
    for name, node in description["nodes"].items():
        colour = _ROUTER if node.get("router") else _HOST
        out.append(f"  {_dot_string('node:' + name)} [label="
                   f"{_dot_string(chr(10).join(_node_label(name, node)))}, shape=box, "
                   f'style="rounded,filled", fillcolor="{colour}"];')
    for name, network in description["networks"].items():
        members = network["members"]
        if network["kind"] == "lan":
            label = "\n".join([f"LAN {name}", network["subnet"], *_shaping(network)])
            out.append(f"  {_dot_string('net:' + name)} [label={_dot_string(label)}, "
                       f'shape=ellipse, style=filled, fillcolor="{_LAN}"];')
            for m in members:
                tail, head, _ = _edge(depth, "node:" + m["node"], "net:" + name)
                out.append(f"  {_dot_string(tail)} -- {_dot_string(head)} [label="
                           f"{_dot_string(m['interface'] + ' ' + _host(m['address']))}];")
        else:
            a, b = members
            tail, head, swapped = _edge(depth, "node:" + a["node"], "node:" + b["node"])
            if swapped:
                a, b = b, a
            label = "\n".join([f"link {name}", network["subnet"], *_shaping(network)])
            out.append(f"  {_dot_string(tail)} -- {_dot_string(head)} [label={_dot_string(label)}, "
                       f"taillabel={_dot_string(a['interface'] + ' ' + _host(a['address']))}, "
                       f"headlabel={_dot_string(b['interface'] + ' ' + _host(b['address']))}, "
                       "penwidth=2];")
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_ids(names: list[str], prefix: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    for name in names:
        base = prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)
        candidate, k = base, 1
        while candidate in ids.values():
            k += 1
            candidate = f"{base}_{k}"
        ids[name] = candidate
    return ids


def _mermaid_text(lines: list[str]) -> str:
    return '"' + "<br/>".join(line.replace('"', "#quot;") for line in lines) + '"'


def to_mermaid(description: dict[str, Any]) -> str:
    """The topology as a Mermaid flowchart (GitHub renders it in Markdown)."""
    nodes = _mermaid_ids(list(description["nodes"]), "n_")
    nets = _mermaid_ids(list(description["networks"]), "net_")
    out = ["graph TD", f"  %% {_caption(description)}"]
    for name, node in description["nodes"].items():
        out.append(f"  {nodes[name]}[{_mermaid_text(_node_label(name, node))}]")
    for name, network in description["networks"].items():
        members = network["members"]
        if network["kind"] == "lan":
            label = [f"LAN {name}", network["subnet"], *_shaping(network)]
            out.append(f"  {nets[name]}([{_mermaid_text(label)}])")
            for m in members:
                edge = _mermaid_text([f"{m['interface']} {_host(m['address'])}"])
                out.append(f"  {nodes[m['node']]} ---|{edge}| {nets[name]}")
        else:
            a, b = members
            edge = _mermaid_text([f"link {name} {network['subnet']}", *_shaping(network),
                                  f"{a['node']} {a['interface']} {_host(a['address'])}",
                                  f"{b['node']} {b['interface']} {_host(b['address'])}"])
            out.append(f"  {nodes[a['node']]} ===|{edge}| {nodes[b['node']]}")
    out.append("  classDef router fill:" + _ROUTER)
    routers = [nodes[n] for n, node in description["nodes"].items() if node.get("router")]
    if routers:
        out.append(f"  class {','.join(routers)} router")
    return "\n".join(out) + "\n"


def graphviz_missing() -> str | None:
    """Why PNG and SVG cannot be drawn here, or None if they can."""
    if shutil.which("dot") is None:
        return ("drawing PNG and SVG needs Graphviz's `dot` (Debian package graphviz: "
                "run scripts/setup-machine as root, or apt-get install graphviz); "
                "--text-only writes just the dot and Mermaid files")
    return None


def render(dot_text: str, fmt: str) -> bytes:
    """The drawing in ``fmt`` (png, svg), made by Graphviz's dot."""
    try:
        done = subprocess.run(["dot", f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                              timeout=60)
    except FileNotFoundError:
        raise GraphError(graphviz_missing() or "dot is not installed") from None
    if done.returncode != 0:
        raise GraphError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def write(description: dict[str, Any], prefix: Path, formats: tuple[str, ...] = FORMATS
          ) -> list[Path]:
    """Write PREFIX.dot, .mmd, .svg and .png (those in ``formats``); the paths written.

    Everything is drawn before anything is written: a failure leaves no half set.
    """
    dot_text = to_dot(description)
    contents: dict[str, bytes] = {}
    for fmt in formats:
        if fmt == "dot":
            contents[fmt] = dot_text.encode()
        elif fmt == "mmd":
            contents[fmt] = to_mermaid(description).encode()
        else:
            contents[fmt] = render(dot_text, fmt)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, data in contents.items():
        path = prefix.with_name(f"{prefix.name}.{fmt}")
        path.write_bytes(data)
        written.append(path)
    return written
