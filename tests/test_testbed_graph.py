"""Topology drawings (`seer testbed graph`) and the pingall expectations of
`seer testbed check`: pure functions of a topology, plus Graphviz for SVG."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import CHAIN_TOPOLOGY, EXAMPLE_TOPOLOGIES
from seer.testbed import check, graph
from seer.testbed.topology import describe, load_topology, parse_topology

NO_GRAPHVIZ = graph.graphviz_missing()


@pytest.fixture(scope="module")
def demo() -> dict:
    return describe(load_topology(EXAMPLE_TOPOLOGIES / "demo.toml"))


@pytest.fixture(scope="module")
def chain() -> dict:
    return describe(parse_topology(CHAIN_TOPOLOGY))


def test_the_demo_dot_names_every_node_lan_attachment_and_address(demo):
    dot = graph.to_dot(demo)
    for node in demo["nodes"]:
        assert f'"node:{node}"' in dot
    for lan, network in demo["networks"].items():
        assert f'"net:{lan}"' in dot and network["subnet"] in dot
        for member in network["members"]:
            address = member["address"].split("/")[0]
            assert f'label="{member["interface"]} {address}"' in dot
    assert "20mbit" in dot  # the bottleneck's bandwidth
    assert dot.count(" -- ") == sum(len(n["members"]) for n in demo["networks"].values())


def test_a_point_to_point_link_is_one_line_with_its_subnet_bandwidth_and_ends(chain):
    dot = graph.to_dot(chain)
    link = next(line for line in dot.splitlines() if "link middle" in line)
    assert '"node:r1" -- "node:r2"' in link and "198.18.50.0/30" in link
    assert "198.18.50.1" in link and "198.18.50.2" in link
    assert "loss 2.0%" in dot and "10mbit" in dot


@pytest.mark.skipif(NO_GRAPHVIZ is not None, reason=NO_GRAPHVIZ or "")
def test_the_demo_svg_names_every_node_and_lan(demo, chain):
    svg = graph.render(graph.to_dot(demo), "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for name in [*demo["nodes"], *demo["networks"]]:
        assert f">{name}<" in svg or f"LAN {name}<" in svg, name
    for network in demo["networks"].values():
        for member in network["members"]:
            assert member["address"].split("/")[0] in svg
    assert "link middle" in graph.render(graph.to_dot(chain), "svg").decode()


def test_the_mermaid_text_has_every_node_and_every_attachment(demo, chain):
    text = graph.to_mermaid(demo)
    assert text.startswith("graph TD\n")
    for node in demo["nodes"]:
        assert f"n_{node}[" in text
    assert text.count("---|") == sum(len(n["members"]) for n in demo["networks"].values())
    assert "n_r1 ===|" in graph.to_mermaid(chain)
    odd = describe(parse_topology('[nodes]\na = {}\nb = {}\n[lans."say \\"hi\\""]\n'
                                  "nodes = ['a', 'b']\n"))
    assert '"' not in graph.to_mermaid(odd).split("LAN ")[1].split("<br/>")[0]  # escaped


def test_the_command_writes_all_four_files_and_refuses_what_is_not_a_topology(tmp_path):
    seer = [sys.executable, "-m", "seer", "testbed", "graph"]
    made = subprocess.run([*seer, str(EXAMPLE_TOPOLOGIES / "demo.toml"), "--output",
                           str(tmp_path / "demo"), *(["--text-only"] if NO_GRAPHVIZ else [])],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    suffixes = ["dot", "mmd"] + ([] if NO_GRAPHVIZ else ["svg", "png"])
    for suffix in suffixes:
        assert (tmp_path / f"demo.{suffix}").stat().st_size > 0
    if not NO_GRAPHVIZ:
        assert (tmp_path / "demo.png").read_bytes().startswith(b"\x89PNG")
    missing = subprocess.run([*seer, "nosuchtb", "--output", str(tmp_path / "x")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "neither a topology file nor a testbed that is up" in missing.stderr
    assert not list(tmp_path.glob("x.*"))  # nothing written


def test_check_expects_what_the_topology_routes_and_nothing_else(chain):
    pairs = check.expected(chain)
    assert pairs[("a", "b")] == "198.18.1.2" and pairs[("b", "a")] == "198.18.0.1"
    assert pairs[("a", "r1")] == "198.18.0.2"  # the shared LAN's address, not a routed one
    unrouted = describe(parse_topology(CHAIN_TOPOLOGY.replace("[nodes.r2]\nrouter = true",
                                                              "[nodes.r2]")))
    assert check.expected(unrouted)[("a", "b")] is None  # r2 does not forward: no path


def test_the_matrix_marks_reached_failed_and_unexpected_pairs():
    nodes = ["a", "b", "c"]
    pairs = {("a", "b"): "x", ("b", "a"): "y", ("a", "c"): None, ("c", "a"): None,
             ("b", "c"): "z", ("c", "b"): "w"}
    results = {("a", "b"): True, ("b", "a"): True, ("b", "c"): False, ("c", "b"): True}
    rows = check.matrix(nodes, pairs, results).splitlines()
    assert rows[1].split() == ["a", ".", "-"] and rows[2].split() == ["b", ".", "X"]
    line, failures = check.summary(pairs, results)
    assert line == "3 of 4 pairs reach each other; 2 pairs have no path in the topology"
    assert failures == ["b cannot reach c at z"]
