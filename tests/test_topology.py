"""Testbed topologies: parsing, addresses, routes, and clear errors."""

from __future__ import annotations

import pytest

from conftest import CHAIN_TOPOLOGY as CHAIN, EXAMPLE_TOPOLOGIES as EXAMPLES
from seer.testbed.topology import TopologyError, load_topology, parse_topology


def test_addresses_come_in_order_from_automatic_subnets():
    t = parse_topology(CHAIN)
    assert [i.address for i in t.nodes["a"].interfaces] == ["198.18.0.1/24"]
    assert [i.address for i in t.nodes["r1"].interfaces] == ["198.18.0.2/24", "198.18.50.1/30"]
    assert [i.name for i in t.nodes["r2"].interfaces] == ["eth1", "eth2"]
    assert t.networks["right"].subnet.cidr.__str__() == "198.18.1.0/24"
    assert t.networks["right"].loss == 0.02 and t.networks["right"].bandwidth == "10mbit"
    assert t.controller_address == "198.19.0.1"
    assert len({n.control_address for n in t.nodes.values()}) == 4


def test_routes_go_through_routers_along_shortest_paths():
    t = parse_topology(CHAIN)
    assert dict(t.nodes["a"].routes) == {"198.18.50.0/30": "198.18.0.2", "198.18.1.0/24": "198.18.0.2"}
    assert dict(t.nodes["r1"].routes) == {"198.18.1.0/24": "198.18.50.2"}
    assert dict(t.nodes["b"].routes) == {"198.18.0.0/24": "198.18.1.1", "198.18.50.0/30": "198.18.1.1"}
    assert t.unreachable == []


def test_subnets_behind_a_host_that_does_not_forward_are_reported():
    t = parse_topology(CHAIN.replace("[nodes.r2]\nrouter = true", "[nodes.r2]"))
    assert ("a", "right") in t.unreachable


def test_given_addresses_and_shipped_examples():
    t = parse_topology(CHAIN.replace('subnet = "198.18.50.0/30"',
                                     'subnet = "198.18.50.0/30"\naddresses = { r2 = "198.18.50.1" }'))
    assert t.nodes["r2"].interfaces[1].address == "198.18.50.1/30"
    assert t.nodes["r1"].interfaces[1].address == "198.18.50.2/30"
    demo = load_topology(EXAMPLES / "demo.toml")
    assert demo.name == "demo" and len(demo.nodes) == 6 and demo.unreachable == []
    assert demo.nodes["server1"].attributes == {"role": "server"}
    assert len(load_topology(EXAMPLES / "star20.toml").nodes) == 20


@pytest.mark.parametrize("text, message", [
    ("[lans.x]\nnodes = ['a']", "at least two nodes"),
    ("[links.x]\nnodes = ['a', 'b', 'c']", "exactly two nodes"),
    ("[lans.x]\nnodes = ['a', 'a']", "listed twice"),
    ("[lans.x]\nnodes = ['a', 'b']\nsubnet = '10.0.0.0/24'", "outside 198.18.0.0/15"),
    ("[lans.x]\nnodes = ['a', 'b']\nsubnet = '198.18.0.1/24'", "host bits set"),
    ("[lans.x]\nnodes = ['a', 'b']\nbandwidth = 'fast'", "should look like 10mbit"),
    ("[lans.x]\nnodes = ['a', 'b']\nloss = '150%'", "should look like 1%"),
    ("[lans.x]\nnodes = ['a', 'b']\ndelay = 'soon'", "should look like 10ms"),
    ("[lans.x]\nnodes = ['a', 'b']\nsubnet = '198.18.0.0/31'\n[lans.y]\nnodes = ['a', 'c']\n"
     "subnet = '198.18.0.0/24'", "overlaps"),
    ("[lans.x]\nnodes = ['a', 'b', 'c']\nsubnet = '198.18.0.0/31'", "too small"),
    ("[lans.x]\nnodes = ['a', 'bad.name']", "not a valid node name"),
    ("[lans.x]\nnodes = ['a', 'b']\ncolour = 'red'", "unknown key(s) colour"),
    ("routers = 1\n[lans.x]\nnodes = ['a', 'b']", "unknown key(s) routers"),
    ("name = 'Bad Name'\n[lans.x]\nnodes = ['a', 'b']", "testbed name"),
    ("[nodes.a]\n", "nothing to connect"),
    ("[lans.x\n", "not valid TOML"),
    ("[lans.x]\nnodes = ['a', 'zz']",
     "lans.x: node 'zz' is not declared under [nodes] (declared: a, b, c, client)"),
    ("[links.x]\nnodes = ['a', 'clinet']", "(the nearest declared name is 'client')"),
    ("[nodes]\nclient1 = {}\nserver1 = {}\n[lans.x]\nnodes = ['client1', 'server']",
     "node 'server' is not declared under [nodes] (the nearest declared name is 'server1'); "
     "fix the name, or declare the node: `server = {}` under [nodes]"),
    ("[nodes]\nswitch = {}\n[lans.x]\nnodes = ['a', 'switch']", "cannot be called 'switch'"),
])
def test_bad_topologies_say_what_is_wrong(text, message):
    if "[nodes]" not in text and "[nodes." not in text:
        # At the end, so that top-level keys stay top-level.
        text += "\n[nodes]\na = {}\nb = {}\nc = {}\nclient = {}\n"
    with pytest.raises(TopologyError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        parse_topology(text, "t.toml")


def test_a_node_no_one_declared_is_refused_not_made():
    with pytest.raises(TopologyError, match="node 'a' is not declared under .nodes. "
                                            r"\(no node is declared\)"):
        parse_topology("[lans.x]\nnodes = ['a', 'b']", "t.toml")


@pytest.mark.parametrize("name", ["abcdefghijklmnop", "a-very-long-testbed-name"])
def test_a_testbed_name_longer_than_the_kernel_allows_is_refused_with_one_that_fits(name):
    with pytest.raises(TopologyError) as refused:
        parse_topology(CHAIN, name=name)
    message = str(refused.value)
    assert f"has {len(name)} characters; the limit is 15" in message and "IFNAMSIZ" in message
    fits = name[:15].rstrip("-")
    assert f"the longest that fits is {fits!r}" in message
    assert parse_topology(CHAIN, name=fits).name == fits  # and it does fit


def test_the_summary_counts_in_the_singular_and_the_plural():
    t = parse_topology(CHAIN)
    assert t.summary() == ("4 nodes (2 routers), 2 LANs, 1 link, "
                           "control network 198.19.0.0/16")
    one = parse_topology("[nodes]\na = {}\nb = {}\n[lans.x]\nnodes = ['a', 'b']")
    assert one.summary().startswith("2 nodes (0 routers), 1 LAN, 0 links")
    demo = load_topology(EXAMPLES / "demo.toml")
    assert demo.summary().startswith("6 nodes (1 router), 3 LANs, 0 links")
