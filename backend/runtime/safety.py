"""Keeping agents' traffic inside the experiment.

An agent that sends to addresses it was given (PING targets, a CBR sink, a
FLOODER victim) resolves them here: node names become their experiment
addresses, and any address must belong to the experiment -- a node's own
address, or on one of the experiment's subnets -- unless the agent group
was explicitly allowed more with ``allow_external``.  An attack agent thus
cannot hit something outside the testbed by a typo.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from backend.runtime.addresspool import PoolAddress

# netaddr costs a daemon ~0.7 MB of heap; it is imported where it is used,
# so a node whose agents never parse an address does without it.
if TYPE_CHECKING:
    import netaddr


class TargetRefused(ValueError):
    """A target outside the experiment, or one that does not resolve."""


def experiment_space(table: dict[str, Any]) -> tuple[set[netaddr.IPAddress], list[netaddr.IPNetwork]]:
    """The experiment's addresses and subnets, from the controller's node table."""
    import netaddr

    addresses: set[netaddr.IPAddress] = set()
    subnets: list[netaddr.IPNetwork] = []
    for info in table.values():
        for address in info.get("addresses") or []:
            try:
                addresses.add(netaddr.IPAddress(address))
            except (netaddr.AddrFormatError, ValueError):
                continue
        for interface in info.get("interfaces") or []:
            for cidr in interface.get("addresses") or []:
                try:
                    network = netaddr.IPNetwork(cidr)
                except (netaddr.AddrFormatError, ValueError):
                    continue
                subnets.append(network.cidr)
    return addresses, subnets


def resolve_targets(specs: Iterable[str], table: dict[str, Any],
                    allow: Iterable[str] = ()) -> list[PoolAddress]:
    """Node names and addresses to (node, address) targets, all inside the
    experiment (or in ``allow``); TargetRefused names the first that is not."""
    import netaddr

    own, subnets = experiment_space(table)
    allowed = [netaddr.IPNetwork(a) for a in allow]
    owner = {netaddr.IPAddress(a): node for node, info in table.items()
             for a in info.get("addresses") or []}
    targets = []
    for spec in specs:
        if spec in table:
            addresses = table[spec].get("addresses") or []
            if not addresses:
                raise TargetRefused(f"node {spec} has no experiment address to send to")
            targets.append(PoolAddress(spec, addresses[0]))
            continue
        try:
            address = netaddr.IPAddress(spec)
        except (netaddr.AddrFormatError, ValueError):
            raise TargetRefused(f"{spec!r} is neither a node of the experiment nor an address") from None
        inside = address in own or any(address in net for net in subnets)
        if not inside and not any(address in net for net in allowed):
            raise TargetRefused(
                f"target {address} is outside the experiment's own addresses; to send there "
                f"anyway, set allow_external={address}/32 for this agent group"
            )
        targets.append(PoolAddress(owner.get(address, ""), str(address)))
    return targets
