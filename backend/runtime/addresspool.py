"""SEER's AddressPool: address ranges per node, to draw clients' addresses from.

A traffic generator picks, for every client it launches, a source address
(usually one of its own node's experiment addresses, or a "fake" range for
spoofed traffic) and a destination (one of the servers' addresses)::

    pool = AddressPool()
    pool.Set("server1", ["198.18.2.10/32"])
    pool.Set("server2", ["198.18.3.0/24"])
    dst = pool.Random()          # PoolAddress(node='server2', address='198.18.3.77')
    node, address = pool.Random()  # SEER's tuple
    pool.RandomNode()            # 'server1' or 'server2'

Every draw is uniform over the pool's (node, range) entries, then uniform
over the usable hosts of the range: a network's own address and its
broadcast address are never drawn (except in /31 and /32, which have none).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

# netaddr costs a daemon ~0.7 MB of heap; it is imported where it is used,
# so a node whose agents never parse an address does without it.
if TYPE_CHECKING:
    import netaddr


class PoolError(ValueError):
    """A range that is not an address or CIDR block, or an empty pool."""


class PoolAddress(NamedTuple):
    """An address drawn from a pool, with the node it belongs to.

    A tuple, as SEER's ``Random()`` returned: ``node, addr = pool.Random()``
    works, and so do ``.node`` and ``.address``."""

    node: str
    address: str

    def __str__(self) -> str:
        return self.address


def _network(text: str) -> netaddr.IPNetwork:
    import netaddr

    try:
        return netaddr.IPNetwork(str(text))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PoolError(f"{text!r} is not an address or CIDR range") from None


def usable_hosts(network: netaddr.IPNetwork) -> tuple[int, int]:
    """First and last usable address (as integers) of a network."""
    first, last = network.first, network.last
    host_bits = (32 if network.version == 4 else 128) - network.prefixlen
    if host_bits >= 2:
        # Leave out the network address and (IPv4) the broadcast address or
        # (IPv6) the subnet-router anycast address at the bottom.
        first += 1
        if network.version == 4:
            last -= 1
    return first, last


class AddressPool:
    """Per-node address ranges; random draws of (node, address)."""

    def __init__(self, nodename: str | None = None, fakelist: Iterable[str] | None = None,
                 rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self._ranges: dict[str, list[netaddr.IPNetwork]] = {}
        if nodename is not None and fakelist:
            self.Set(nodename, list(fakelist))

    def Set(self, node: str, ranges: Iterable[str]) -> None:
        """Expecting 'nodename', [CIDR, CIDR, ...]; replaces that node's ranges."""
        networks = [_network(r) for r in ranges]
        if networks:
            self._ranges[node] = networks
        else:
            self._ranges.pop(node, None)

    def Add(self, node: str, ranges: Iterable[str]) -> None:
        """Add ranges to a node's (for "fake" source ranges beside real ones)."""
        self._ranges.setdefault(node, []).extend(_network(r) for r in ranges)

    def nodes(self) -> list[str]:
        return sorted(self._ranges)

    def ranges(self, node: str) -> list[str]:
        return [str(n) for n in self._ranges.get(node, [])]

    def __len__(self) -> int:
        return sum(len(r) for r in self._ranges.values())

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def _entries(self) -> list[tuple[str, netaddr.IPNetwork]]:
        entries = [(node, net) for node, nets in sorted(self._ranges.items()) for net in nets]
        if not entries:
            raise PoolError("the address pool is empty: no node has addresses in it")
        return entries

    def Random(self) -> PoolAddress:
        """A random usable address of one of the pool's ranges, with its node."""
        import netaddr

        node, network = self.rng.choice(self._entries())
        first, last = usable_hosts(network)
        value = self.rng.randint(first, last)
        return PoolAddress(node, str(netaddr.IPAddress(value, network.version)))

    def RandomNode(self) -> str:
        """A random node of the pool."""
        nodes = self.nodes()
        if not nodes:
            raise PoolError("the address pool is empty: no node has addresses in it")
        return self.rng.choice(nodes)

    def contains(self, address: str) -> bool:
        """Whether ``address`` lies in one of the pool's ranges."""
        import netaddr

        try:
            ip = netaddr.IPAddress(address)
        except (netaddr.AddrFormatError, ValueError):
            return False
        return any(ip in net for nets in self._ranges.values() for net in nets)

    def to_json(self) -> dict[str, list[str]]:
        return {node: self.ranges(node) for node in self.nodes()}

    @classmethod
    def from_json(cls, data: dict[str, list[str]], rng: random.Random | None = None) -> AddressPool:
        pool = cls(rng=rng)
        for node, ranges in data.items():
            pool.Set(node, ranges)
        return pool
