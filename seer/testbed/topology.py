"""Testbed topologies: the TOML file, checked, with addresses and routes.

Pure: parsing, validation, address assignment and route computation, no
system calls.  A topology looks like this::

    name = "demo"                    # the testbed's name (--name overrides)
    control = "198.19.0.0/16"        # control network (default shown)

    [nodes]                          # every node, declared once
    client1 = {}                     # a node without options
    client2 = {}
    [nodes.router]
    router = true                    # forwards between its networks
    [nodes.server1]
    attributes = { role = "server" }
    labels = ["www"]

    [lans.clients]                   # a LAN: a bridge with several nodes
    nodes = ["client1", "client2", "router"]
    subnet = "198.18.1.0/24"         # optional: taken from 198.18.0.0/16
    bandwidth = "100mbit"            # optional shaping of each member's link
    loss = "1%"                      # optional; delay needs netem

    [links.uplink]                   # a point-to-point link
    nodes = ["router", "server1"]
    bandwidth = "10mbit"
    addresses = { server1 = "198.18.9.2" }   # optional, else in order

A LAN or link may only list declared nodes: a misspelt name is refused
with the nearest declared one, instead of quietly becoming a node of its
own.  ``controller``, ``relay``, ``switch`` and ``supervisor`` name the
testbed's own parts and cannot be nodes.  A testbed's name has at most 15
characters, the kernel's limit for interface names (IFNAMSIZ - 1), so that
it fits wherever the kernel names things after it.

Nodes get the subnet's addresses in the order listed (.1, .2, ...) unless
given.  Every node gets a route to every experiment subnet through the
routers; a subnet it cannot reach through routers is reported.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netaddr

from seer.protocol.targets import check_node_name

EXPERIMENT_SPACE = netaddr.IPNetwork("198.18.0.0/16")
DEFAULT_CONTROL = "198.19.0.0/16"
BENCHMARK_SPACE = netaddr.IPNetwork("198.18.0.0/15")
_RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$", re.I)
_DELAY = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")
_LOSS = re.compile(r"^(\d+(\.\d+)?)%$")
_TESTBED_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
#: The kernel's interface names hold 15 characters (IFNAMSIZ - 1); so do testbed names.
NAME_LIMIT = 15
#: Names of the testbed's own processes and namespaces (`seer testbed exec/restart NAME`).
RESERVED_NODE_NAMES = ("controller", "relay", "switch", "supervisor")


class TopologyError(ValueError):
    """A topology that cannot be built; the message says where and why."""


@dataclass
class Interface:
    """One node's attachment to a network."""

    node: str
    network: str
    name: str  # inside the node's namespace: eth1, eth2, ...
    address: str  # with prefix length, e.g. 198.18.1.1/24

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


@dataclass
class Network:
    """A LAN (bridge) or a point-to-point link, with its shaping."""

    name: str
    kind: str  # "lan" or "link"
    subnet: netaddr.IPNetwork
    nodes: list[str]
    bandwidth: str | None = None
    delay: str | None = None
    loss: float | None = None
    interfaces: list[Interface] = field(default_factory=list)


@dataclass
class Node:
    name: str
    router: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    interfaces: list[Interface] = field(default_factory=list)
    control_address: str = ""
    routes: list[tuple[str, str]] = field(default_factory=list)  # (subnet, via)


@dataclass
class Topology:
    name: str
    control: netaddr.IPNetwork
    nodes: dict[str, Node]
    networks: dict[str, Network]
    controller_address: str = ""
    unreachable: list[tuple[str, str]] = field(default_factory=list)

    def node_names(self) -> list[str]:
        return list(self.nodes)

    def address_of(self, node: str) -> list[str]:
        return [i.ip for i in self.nodes[node].interfaces]

    def summary(self) -> str:
        lans = sum(1 for n in self.networks.values() if n.kind == "lan")
        links = len(self.networks) - lans
        routers = sum(1 for n in self.nodes.values() if n.router)
        return (f"{counted(len(self.nodes), 'node')} ({counted(routers, 'router')}), "
                f"{counted(lans, 'LAN')}, {counted(links, 'link')}, "
                f"control network {self.control}")


def counted(n: int, word: str) -> str:
    """'1 LAN', '2 LANs', '0 links'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_testbed_name(name: object) -> str:
    """The name, if it can name a testbed; else TopologyError saying why and what would do."""
    if not isinstance(name, str) or not _TESTBED_NAME.match(name):
        raise TopologyError(f"testbed name {name!r}: use lower-case letters, digits and '-', "
                            "starting with a letter or digit")
    if len(name) > NAME_LIMIT:
        fits = name[:NAME_LIMIT].rstrip("-")
        raise TopologyError(
            f"testbed name {name!r} has {len(name)} characters; the limit is {NAME_LIMIT} "
            f"(the kernel's interface names, IFNAMSIZ - 1): the longest that fits is "
            f"{fits!r} (--name {fits})")
    return name


def _table(data: Any, where: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TopologyError(f"{where} must be a table")
    return data


def _check_shaping(spec: dict[str, Any], where: str) -> tuple[str | None, str | None, float | None]:
    bandwidth, delay, loss = spec.get("bandwidth"), spec.get("delay"), spec.get("loss")
    if bandwidth is not None and (not isinstance(bandwidth, str) or not _RATE.match(bandwidth)):
        raise TopologyError(f"{where}: bandwidth {bandwidth!r} should look like 10mbit or 500kbit")
    if delay is not None and (not isinstance(delay, str) or not _DELAY.match(delay)):
        raise TopologyError(f"{where}: delay {delay!r} should look like 10ms")
    loss_fraction = None
    if loss is not None:
        m = _LOSS.match(str(loss))
        if not m or not 0 <= float(m.group(1)) < 100:
            raise TopologyError(f"{where}: loss {loss!r} should look like 1% (0 to 99.9%)")
        loss_fraction = float(m.group(1)) / 100
    return bandwidth, delay, loss_fraction


def _subnet(text: Any, where: str) -> netaddr.IPNetwork:
    try:
        net = netaddr.IPNetwork(str(text))
    except (netaddr.AddrFormatError, ValueError):
        raise TopologyError(f"{where}: {text!r} is not a subnet") from None
    if net.version != 4 or net.ip != net.network:
        raise TopologyError(f"{where}: {text} is not an IPv4 subnet (host bits set?)")
    if net not in BENCHMARK_SPACE:
        raise TopologyError(f"{where}: {net} is outside 198.18.0.0/15, the testbed's address space")
    return net


def parse_topology(text: str, source: str = "topology", name: str | None = None) -> Topology:
    """Parse and check a topology; addresses and routes are filled in."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TopologyError(f"{source} is not valid TOML: {e}") from None
    known = {"name", "control", "nodes", "lans", "links"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TopologyError(f"{source}: unknown key(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
    testbed = check_testbed_name(name or data.get("name") or Path(source).stem)
    control = _subnet(data.get("control", DEFAULT_CONTROL), f"{source}: control")

    nodes: dict[str, Node] = {}

    def node(name: Any, where: str) -> Node:
        try:
            check_node_name(name)
        except ValueError as e:
            raise TopologyError(f"{where}: {e}") from None
        if name in RESERVED_NODE_NAMES:
            raise TopologyError(f"{where}: a node cannot be called {name!r}: "
                                f"{', '.join(RESERVED_NODE_NAMES)} name the testbed's own parts")
        return nodes.setdefault(name, Node(name))

    def member(name: Any, where: str) -> None:
        """A LAN's or link's node: it must be one of the declared nodes."""
        if isinstance(name, str) and name in nodes:
            return
        try:
            check_node_name(name)
        except ValueError as e:
            raise TopologyError(f"{where}: {e}") from None
        nearest = difflib.get_close_matches(name, list(nodes), n=1, cutoff=0.4)
        if nearest:
            known = f" (the nearest declared name is {nearest[0]!r})"
        elif nodes:  # nothing alike: the names there are
            listed = list(nodes)[:8]
            known = f" (declared: {', '.join(listed)}{', ...' if len(nodes) > 8 else ''})"
        else:
            known = " (no node is declared)"
        raise TopologyError(f"{where}: node {name!r} is not declared under [nodes]{known}; "
                            f"fix the name, or declare the node: `{name} = {{}}` under [nodes]")

    for name, options in _table(data.get("nodes"), f"{source}: nodes").items():
        options = _table(options, f"{source}: nodes.{name}")
        extra = sorted(set(options) - {"router", "attributes", "labels"})
        if extra:
            raise TopologyError(f"{source}: nodes.{name}: unknown key(s) {', '.join(extra)}")
        n = node(name, f"{source}: nodes")
        n.router = bool(options.get("router", False))
        n.attributes = {str(k): str(v) for k, v in _table(options.get("attributes"), f"nodes.{name}.attributes").items()}
        labels = options.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise TopologyError(f"{source}: nodes.{name}.labels must be a list of strings")
        n.labels = labels

    networks: dict[str, Network] = {}
    for kind, table_name in (("lan", "lans"), ("link", "links")):
        for net_name, spec in _table(data.get(table_name), f"{source}: {table_name}").items():
            where = f"{source}: {table_name}.{net_name}"
            spec = _table(spec, where)
            extra = sorted(set(spec) - {"nodes", "subnet", "bandwidth", "delay", "loss", "addresses"})
            if extra:
                raise TopologyError(f"{where}: unknown key(s) {', '.join(extra)}")
            if net_name in networks:
                raise TopologyError(f"{where}: a LAN and a link are both called {net_name!r}")
            members = spec.get("nodes")
            if not isinstance(members, list) or len(members) < 2:
                raise TopologyError(f"{where}: nodes must list at least two nodes")
            if kind == "link" and len(members) != 2:
                raise TopologyError(f"{where}: a link joins exactly two nodes; use a LAN for more")
            if len(set(members)) != len(members):
                raise TopologyError(f"{where}: a node is listed twice")
            for m in members:
                member(m, where)
            bandwidth, delay, loss = _check_shaping(spec, where)
            subnet = _subnet(spec["subnet"], where) if "subnet" in spec else None
            networks[net_name] = Network(net_name, kind, subnet, list(members), bandwidth,
                                         delay, loss)
            addresses = _table(spec.get("addresses"), f"{where}.addresses")
            for member in addresses:
                if member not in members:
                    raise TopologyError(f"{where}.addresses: {member} is not on this network")
            networks[net_name].interfaces = [
                Interface(m, net_name, "", str(addresses[m])) if m in addresses else
                Interface(m, net_name, "", "") for m in members
            ]
    if not networks:
        raise TopologyError(f"{source}: no LANs or links: nothing to connect")
    topology = Topology(testbed, control, nodes, networks)
    _assign_subnets(topology)
    _assign_addresses(topology)
    _compute_routes(topology)
    return topology


def load_topology(path: str | Path, name: str | None = None) -> Topology:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TopologyError(f"cannot read topology {path}: {e.strerror}") from None
    return parse_topology(text, str(path), name)


def _assign_subnets(topology: Topology) -> None:
    taken = [n.subnet for n in topology.networks.values() if n.subnet is not None]
    taken.append(topology.control)
    for net in topology.networks.values():
        for other in taken:
            if net.subnet is not None and other is not net.subnet and (
                    net.subnet in other or other in net.subnet):
                raise TopologyError(f"{net.name}: subnet {net.subnet} overlaps {other}")
    candidates = (s for s in EXPERIMENT_SPACE.subnet(24))
    for net in topology.networks.values():
        if net.subnet is not None:
            continue
        for candidate in candidates:
            if not any(candidate in t or t in candidate for t in taken):
                net.subnet = candidate
                taken.append(candidate)
                break
        else:
            raise TopologyError("ran out of /24 subnets in 198.18.0.0/16")


def _assign_addresses(topology: Topology) -> None:
    for net in topology.networks.values():
        hosts = iter(net.subnet.iter_hosts()) if net.subnet.prefixlen < 31 else iter(net.subnet)
        used = set()
        for iface in net.interfaces:
            if iface.address:
                try:
                    ip = netaddr.IPAddress(iface.address)
                except (netaddr.AddrFormatError, ValueError):
                    raise TopologyError(f"{net.name}: {iface.address!r} is not an address") from None
                if ip not in net.subnet or (ip in (net.subnet.network, net.subnet.broadcast) \
                                            and net.subnet.prefixlen < 31):
                    raise TopologyError(f"{net.name}: {ip} is not a host address of {net.subnet}")
                if ip in used:
                    raise TopologyError(f"{net.name}: {ip} is given twice")
                used.add(ip)
        for iface in net.interfaces:
            if not iface.address:
                ip = next((h for h in hosts if h not in used), None)
                if ip is None:
                    raise TopologyError(f"{net.name}: {net.subnet} is too small for its nodes")
                used.add(ip)
                iface.address = str(ip)
            iface.address = f"{iface.address.split('/')[0]}/{net.subnet.prefixlen}"
    for node in topology.nodes.values():
        node.interfaces = []
    for net in topology.networks.values():
        for iface in net.interfaces:
            node = topology.nodes[iface.node]
            iface.name = f"eth{len(node.interfaces) + 1}"
            node.interfaces.append(iface)
    hosts = topology.control.iter_hosts()
    topology.controller_address = str(next(hosts))
    for node in topology.nodes.values():
        try:
            node.control_address = f"{next(hosts)}/{topology.control.prefixlen}"
        except StopIteration:
            raise TopologyError(f"control network {topology.control} is too small") from None


def _compute_routes(topology: Topology) -> None:
    """Shortest paths through routers: for each node and each subnet it is
    not on, the first router's address on a network the node is on."""
    by_network = {name: net for name, net in topology.networks.items()}
    for source in topology.nodes.values():
        attached = {i.network for i in source.interfaces}
        # BFS over networks; each step crosses a router.
        first_hop: dict[str, str] = {}
        queue: deque[str] = deque()
        for network in attached:
            for iface in by_network[network].interfaces:
                if iface.node != source.name and topology.nodes[iface.node].router:
                    for onward in topology.nodes[iface.node].interfaces:
                        if onward.network not in attached and onward.network not in first_hop:
                            first_hop[onward.network] = iface.ip
                            queue.append(onward.network)
        while queue:
            network = queue.popleft()
            for iface in by_network[network].interfaces:
                if topology.nodes[iface.node].router:
                    for onward in topology.nodes[iface.node].interfaces:
                        if onward.network not in attached and onward.network not in first_hop:
                            first_hop[onward.network] = first_hop[network]
                            queue.append(onward.network)
        source.routes = sorted((str(by_network[n].subnet), via) for n, via in first_hop.items())
        for name in by_network:
            if name not in attached and name not in first_hop:
                topology.unreachable.append((source.name, name))


def describe(topology: Topology) -> dict[str, Any]:
    """The topology as plain data (JSON): what `inspect`, `check` and `graph`
    read, and what a testbed's state keeps of its topology."""
    return {
        "name": topology.name,
        "control": str(topology.control),
        "controller_address": topology.controller_address,
        "nodes": {
            n.name: {"router": n.router, "attributes": n.attributes, "labels": n.labels,
                     "control_address": n.control_address,
                     "interfaces": [{"name": i.name, "network": i.network, "address": i.address}
                                    for i in n.interfaces],
                     "routes": [{"subnet": s, "via": v} for s, v in n.routes]}
            for n in topology.nodes.values()},
        "networks": {
            net.name: {"kind": net.kind, "subnet": str(net.subnet), "bandwidth": net.bandwidth,
                       "delay": net.delay, "loss": net.loss,
                       "members": [{"node": i.node, "interface": i.name, "address": i.address}
                                   for i in net.interfaces]}
            for net in topology.networks.values()},
        "unreachable": [list(pair) for pair in topology.unreachable],
    }
