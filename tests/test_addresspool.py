"""SEER's AddressPool over netaddr."""

from __future__ import annotations

import random

import netaddr
import pytest

from backend.runtime.addresspool import AddressPool, PoolError, usable_hosts


def test_random_draws_a_usable_host_of_the_nodes_ranges():
    pool = AddressPool(rng=random.Random(1))
    pool.Set("client1", ["198.18.1.0/29"])
    drawn = {pool.Random() for _ in range(500)}
    assert {d.node for d in drawn} == {"client1"}
    addresses = {d.address for d in drawn}
    assert addresses == {f"198.18.1.{i}" for i in range(1, 7)}  # never .0 or .7


def test_slash_31_and_32_have_no_network_or_broadcast_to_avoid():
    pool = AddressPool(rng=random.Random(2))
    pool.Set("a", ["198.18.0.4/31"])
    pool.Set("b", ["198.18.0.9"])
    drawn = {(p.node, p.address) for p in (pool.Random() for _ in range(200))}
    assert drawn == {("a", "198.18.0.4"), ("a", "198.18.0.5"), ("b", "198.18.0.9")}


def test_ipv6_skips_the_subnet_router_address():
    first, last = usable_hosts(netaddr.IPNetwork("2001:db8::/126"))
    assert netaddr.IPAddress(first) == netaddr.IPAddress("2001:db8::1")
    assert netaddr.IPAddress(last) == netaddr.IPAddress("2001:db8::3")


def test_constructor_takes_seers_nodename_and_fakelist():
    pool = AddressPool("attacker", ["198.19.0.0/16"], rng=random.Random(3))
    src = pool.Random()
    assert src.node == "attacker" and netaddr.IPAddress(src.address) in netaddr.IPNetwork("198.19.0.0/16")
    assert str(src) == src.address


def test_random_node_and_membership():
    pool = AddressPool(rng=random.Random(4))
    pool.Set("s1", ["198.18.2.10/32"])
    pool.Set("s2", ["198.18.3.0/24"])
    assert {pool.RandomNode() for _ in range(100)} == {"s1", "s2"}
    assert pool.contains("198.18.3.77") and not pool.contains("198.18.4.1")
    pool.Set("s2", [])
    assert pool.nodes() == ["s1"]


def test_draws_are_uniform_over_entries_then_hosts():
    pool = AddressPool(rng=random.Random(5))
    pool.Set("big", ["198.18.0.0/16"])
    pool.Set("small", ["198.19.0.1/32"])
    nodes = [pool.Random().node for _ in range(4000)]
    assert 0.45 < nodes.count("small") / len(nodes) < 0.55


def test_empty_pool_and_bad_ranges_are_clear_errors():
    with pytest.raises(PoolError, match="empty"):
        AddressPool().Random()
    with pytest.raises(PoolError, match="empty"):
        AddressPool().RandomNode()
    with pytest.raises(PoolError, match="'10.0.0.300/24' is not an address"):
        AddressPool().Set("n", ["10.0.0.300/24"])


def test_pool_round_trips_through_json():
    pool = AddressPool()
    pool.Set("n1", ["198.18.1.0/24", "198.19.0.1/32"])
    again = AddressPool.from_json(pool.to_json())
    assert again.to_json() == {"n1": ["198.18.1.0/24", "198.19.0.1/32"]}
