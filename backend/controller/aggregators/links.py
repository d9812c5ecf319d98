"""Which interfaces make up which link: the ends of a point-to-point link or
the members of a LAN, matched by their addresses' subnets.

Every node's INFO lists its experiment interfaces with their addresses and
prefix lengths; interfaces whose addresses fall in one subnet are one link.
A link is named by the controller's ``link_names`` setting (SUBNET=NAME;
the testbed passes its LAN and link names) or else by its subnet.  Two
members on a /30 or /31 make a point-to-point ``link``; anything else is a
``lan``.  Pure: built from plain data, rebuilt when the node table changes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass
class Link:
    name: str
    subnet: str
    kind: str = "lan"
    #: (node, interface) of each member, in node order.
    members: list[tuple[str, str]] = field(default_factory=list)


class LinkMap:
    def __init__(self, links: dict[str, Link]) -> None:
        self.links = links
        self.by_interface = {member: link.name for link in links.values()
                             for member in link.members}

    def link_of(self, node: str, interface: str) -> str | None:
        return self.by_interface.get((node, interface))

    @classmethod
    def build(cls, nodes: Iterable[tuple[str, list[dict[str, Any]]]],
              names: dict[str, str] | None = None) -> LinkMap:
        """From (node name, INFO interfaces) pairs and SUBNET=NAME names."""
        named = {}
        for subnet, name in (names or {}).items():
            try:
                named[ipaddress.ip_network(subnet, strict=False)] = name
            except ValueError:
                continue
        found: dict[Any, Link] = {}
        for node, interfaces in sorted(nodes):
            for interface in interfaces or []:
                iface = interface.get("name") if isinstance(interface, dict) else None
                if not isinstance(iface, str):
                    continue
                for address in interface.get("addresses") or []:
                    try:
                        network = ipaddress.ip_interface(address).network
                    except ValueError:
                        continue
                    if network.prefixlen == network.max_prefixlen:
                        continue  # a host address says nothing of a link
                    link = found.get(network)
                    if link is None:
                        link = found[network] = Link(named.get(network, str(network)),
                                                     str(network))
                    if (node, iface) not in link.members:
                        link.members.append((node, iface))
                    break  # an interface belongs to one link: its first subnet's
        links = {}
        for network, link in found.items():
            link.kind = "link" if len(link.members) == 2 and network.prefixlen >= \
                network.max_prefixlen - 2 else "lan"
            links[link.name] = link
        return cls(links)
