"""Building and tearing down a testbed's network, in its own namespaces.

Namespaces (``seer-<testbed>.<node>`` for nodes, ``seer-<testbed>._sw`` for
the switch that holds every bridge, ``seer-<testbed>._ctl`` for the
controller)::

    node ns:   lo, ctl0 (control network), eth1..ethN (experiment)
    switch ns: bridge "ctl" (control network), bridge "lanK" per LAN,
               the switch side of every veth
    ctl ns:    lo, ctl0

The dot cannot appear in a testbed's name or a node's, and no node name
starts with ``_``: so a namespace's testbed is read from its name exactly,
and testbed ``a`` never claims testbed ``a-b``'s namespaces.

A LAN is a bridge in the switch namespace with one veth per member; a link
is a veth pair straight between two node namespaces.  Multicast snooping is
off on every bridge, so the control bridge floods SEER's datagrams to every
port.  Bandwidth is a tbf qdisc on both ends of a member's veth; loss is a
random drop (nftables, netdev ingress) on each member, where a lossy wire
loses packets: the sender's socket is not told; delay needs netem, which is
reported plainly where the kernel lacks it.  Control-network loss is a
random drop of UDP on the control bridge (nftables, bridge family).
"""

from __future__ import annotations

from typing import Callable

from seer.testbed.netns import (
    PREFIX,
    ToolFailed,
    add_namespace,
    delete_namespace,
    in_namespace,
    ip,
    namespaces,
    run,
)
from seer.testbed.topology import Topology

#: nftables table (in the switch namespace) for control-network loss.
LOSS_TABLE = "seer_control_loss"


class BuildError(RuntimeError):
    """The testbed's network could not be built; it was taken down again."""


def node_ns(testbed: str, node: str) -> str:
    return f"{PREFIX}{testbed}.{node}"


def switch_ns(testbed: str) -> str:
    return f"{PREFIX}{testbed}._sw"


def controller_ns(testbed: str) -> str:
    return f"{PREFIX}{testbed}._ctl"


def planned_namespaces(topology: Topology) -> list[str]:
    """The namespaces building ``topology`` makes, switch and controller first."""
    name = topology.name
    return [switch_ns(name), controller_ns(name)] + [node_ns(name, n) for n in topology.nodes]


def owner(namespace: str) -> str | None:
    """The testbed a namespace belongs to, read from its name; None if it is not a testbed's."""
    if not namespace.startswith(PREFIX) or "." not in namespace:
        return None
    return namespace[len(PREFIX):].split(".", 1)[0]


def testbed_namespaces(testbed: str) -> list[str]:
    """Every namespace that belongs to ``testbed`` (and to no other)."""
    return [n for n in namespaces() if owner(n) == testbed]


def testbeds_in_kernel() -> set[str]:
    """Names of the testbeds that have namespaces on this machine."""
    return {o for o in map(owner, namespaces()) if o}


def _shape(ns: str, device: str, bandwidth: str | None, delay: str | None) -> None:
    if delay:
        try:
            run(in_namespace(ns, ["tc", "qdisc", "add", "dev", device, "root", "handle", "1:",
                                  "netem", "delay", delay]))
        except ToolFailed as e:
            if "unknown" in e.output.lower():
                raise BuildError(
                    f"delay {delay} needs the netem qdisc, which this kernel does not have; "
                    "remove `delay` from the topology (bandwidth and loss work without it)"
                ) from None
            raise
        if bandwidth:
            run(in_namespace(ns, ["tc", "qdisc", "add", "dev", device, "parent", "1:", "handle",
                                  "2:", "tbf", "rate", bandwidth, "burst", "64kbit", "latency",
                                  "100ms"]))
        return
    if bandwidth:
        # burst: enough for one full-size frame at any rate; latency bounds the queue.
        run(in_namespace(ns, ["tc", "qdisc", "add", "dev", device, "root", "tbf", "rate",
                              bandwidth, "burst", "64kbit", "latency", "100ms"]))


def _drop(ns: str, device: str, fraction: float) -> None:
    """Random loss on packets arriving at ``device`` (nftables netdev ingress)."""
    table = f"seer_loss_{device}"
    per_mille = round(fraction * 1000)
    run(in_namespace(ns, ["nft", "add", "table", "netdev", table]))
    run(in_namespace(ns, ["nft", "add", "chain", "netdev", table, "ingress",
                          f'{{ type filter hook ingress device "{device}" priority 0; }}']))
    run(in_namespace(ns, ["nft", "add", "rule", "netdev", table, "ingress", "numgen", "random",
                          "mod", "1000", "<", str(per_mille), "counter", "drop"]))


def build_network(topology: Topology, progress: Callable[[str], None] = lambda s: None) -> None:
    """Create every namespace, link, address and route; raise BuildError
    (after tearing down what was made) if anything fails."""
    name = topology.name
    try:
        _build(topology, progress)
    except (ToolFailed, BuildError) as e:
        destroy_network(name)
        if isinstance(e, BuildError):
            raise
        raise BuildError(str(e)) from None


def _build(topology: Topology, progress: Callable[[str], None]) -> None:
    name = topology.name
    sw, ctl = switch_ns(name), controller_ns(name)
    progress(f"creating {len(topology.nodes) + 2} network namespaces")
    for ns in planned_namespaces(topology):
        add_namespace(ns)
    ip("link", "add", "ctl", "type", "bridge", "mcast_snooping", "0", ns=sw)
    ip("link", "set", "ctl", "up", ns=sw)

    progress("control network")
    endpoints = [(ctl, f"{topology.controller_address}/{topology.control.prefixlen}")]
    endpoints += [(node_ns(name, n.name), n.control_address) for n in topology.nodes.values()]
    for k, (ns, address) in enumerate(endpoints):
        port = f"c{k}"
        ip("link", "add", "ctl0", "netns", ns, "type", "veth", "peer", "name", port, "netns", sw)
        ip("link", "set", port, "master", "ctl", "up", ns=sw)
        ip("addr", "add", address, "dev", "ctl0", ns=ns)
        ip("link", "set", "ctl0", "up", ns=ns)

    progress("experiment LANs and links")
    for k, net in enumerate(topology.networks.values()):
        if net.kind == "lan":
            bridge = f"lan{k}"
            ip("link", "add", bridge, "type", "bridge", "mcast_snooping", "0", ns=sw)
            ip("link", "set", bridge, "up", ns=sw)
            for j, iface in enumerate(net.interfaces):
                ns = node_ns(name, iface.node)
                port = f"l{k}p{j}"
                ip("link", "add", iface.name, "netns", ns, "type", "veth", "peer", "name", port,
                   "netns", sw)
                ip("link", "set", port, "master", bridge, "up", ns=sw)
                _shape(sw, port, net.bandwidth, net.delay)
        else:
            a, b = net.interfaces
            ip("link", "add", a.name, "netns", node_ns(name, a.node), "type", "veth", "peer",
               "name", b.name, "netns", node_ns(name, b.node))
        for iface in net.interfaces:
            ns = node_ns(name, iface.node)
            ip("addr", "add", iface.address, "dev", iface.name, ns=ns)
            ip("link", "set", iface.name, "up", ns=ns)
            _shape(ns, iface.name, net.bandwidth, net.delay)
            if net.loss:
                _drop(ns, iface.name, net.loss)

    progress("routes")
    for node in topology.nodes.values():
        ns = node_ns(name, node.name)
        if node.router:
            run(in_namespace(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]))
        for subnet, via in node.routes:
            ip("route", "add", subnet, "via", via, ns=ns)


def set_control_loss(testbed: str, fraction: float) -> None:
    """Drop this fraction of the UDP crossing the control bridge (0: none)."""
    sw = switch_ns(testbed)
    run(in_namespace(sw, ["nft", "delete", "table", "bridge", LOSS_TABLE]), check=False)
    if fraction <= 0:
        return
    per_mille = round(fraction * 1000)
    run(in_namespace(sw, ["nft", "add", "table", "bridge", LOSS_TABLE]))
    run(in_namespace(sw, ["nft", "add", "chain", "bridge", LOSS_TABLE, "forward",
                          "{ type filter hook forward priority 0; }"]))
    run(in_namespace(sw, ["nft", "add", "rule", "bridge", LOSS_TABLE, "forward",
                          # control-network ports are c0, c1, ...: only they are hit
                          "iifname", '"c*"', "meta", "l4proto", "udp", "numgen", "random", "mod",
                          "1000", "<", str(per_mille), "counter", "drop"]))


def control_loss_counters(testbed: str) -> int:
    """Packets the control-loss rule dropped so far."""
    out = run(in_namespace(switch_ns(testbed), ["nft", "list", "table", "bridge", LOSS_TABLE]),
              check=False)
    for word, value in zip(out.split(), out.split()[1:], strict=False):
        if word == "packets":
            return int(value)
    return 0


def destroy_network(testbed: str) -> list[str]:
    """Delete the testbed's namespaces -- its own, matched exactly -- and with
    them its links and bridges."""
    removed = testbed_namespaces(testbed)
    for ns in removed:
        delete_namespace(ns)
    return removed
