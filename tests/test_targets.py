"""Target specs: wildcards, lists, attributes, has:, and clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from seer.protocol.targets import ALL, TargetError, parse_target, short_name, targets_node


@dataclass
class N:
    name: str
    addresses: list = field(default_factory=list)
    interfaces: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    attributes: dict = field(default_factory=dict)


NODES = [
    N("client1", ["198.18.1.10"], [{"name": "eth1", "label": "lan1", "addresses": ["198.18.1.10/24"]}]),
    N("client2", ["198.18.1.11"], [{"name": "eth1", "label": "lan1b"}]),
    N("server1", ["198.18.2.10"], labels=["www"], attributes={"role": "server"}),
    N("router1", ["198.18.1.1", "198.18.2.1"], attributes={"role": "router", "sink": "true"}),
    N("monitor", attributes={"sink": "false"}),
]


def resolve(spec):
    return parse_target(spec).resolve(NODES)


def test_all_and_none_mean_every_node():
    assert resolve("all") == sorted(n.name for n in NODES)
    assert resolve(None) == resolve("*")
    assert parse_target(None).wire(resolve(None)) == ALL


def test_wildcards_and_lists():
    assert resolve("client*") == ["client1", "client2"]
    assert resolve("client1, server1") == ["client1", "server1"]
    assert resolve(["client1", "router*"]) == ["client1", "router1"]
    assert parse_target("client*").wire(["client1", "client2"]) == ["client1", "client2"]


def test_attributes_with_and_without_value():
    assert resolve("@sink") == ["router1"]
    assert resolve("@role=server") == ["server1"]


def test_has_label_address_or_interface():
    assert resolve("has:www") == ["server1"]
    assert resolve("has:198.18.2.1") == ["router1"]
    assert resolve("has:lan1b") == ["client2"]
    assert resolve("has:198.18.1.10") == ["client1"]


def test_ambiguous_has_is_an_error():
    with pytest.raises(TargetError, match="ambiguous"):
        resolve("has:eth1")


@pytest.mark.parametrize("spec", ["clinet1", "client1,typo", "@nosuch", "has:nothing"])
def test_a_term_matching_no_node_is_an_error_naming_it(spec):
    with pytest.raises(TargetError, match="matches no node"):
        resolve(spec)


def test_no_nodes_at_all_is_an_error():
    with pytest.raises(TargetError, match="no node has registered"):
        parse_target("all").resolve([])


@pytest.mark.parametrize("spec", ["has:", "@", 5, ["a", 3]])
def test_malformed_specs(spec):
    with pytest.raises(TargetError):
        parse_target(spec).resolve(NODES)


def test_node_side_check():
    assert targets_node("*", "x")
    assert targets_node(["a", "x"], "x")
    assert not targets_node(["a"], "x")
    assert not targets_node(None, "x")


def test_short_names_drop_the_domain():
    assert short_name("node1.exp.deterlab.net") == "node1"
    assert short_name("node1") == "node1"


@pytest.mark.parametrize("spec", ["n[1-", "n[1-3", "a[", "n]"])
def test_a_malformed_pattern_is_said_to_be_malformed_not_to_match_nothing(spec):
    with pytest.raises(TargetError, match="malformed target"):
        parse_target(spec)


@pytest.mark.parametrize("spec", ["n[1-3]", "n[!a]", "n[]]x", "client*", "@role=x", "has:eth1"])
def test_well_formed_patterns_parse(spec):
    assert str(parse_target(spec)) == spec
