"""SEER's sending API on the CommWrapper, through a controller on fakes."""

from __future__ import annotations

import pytest

from seer.protocol.targets import TargetError


def test_send_to_experiment_node_nodes_and_the_node_that_has(lab):
    lab.register("n1", addresses=["198.18.1.1"], labels=["router"])
    lab.register("n2", interfaces=[{"name": "eth1", "label": "link7"}])
    lab.register("n3", attributes={"sink": "true"})
    comm = lab.c.comm
    message = {"type": "COMMAND", "agent": "NOOP", "group": "g", "command": "START", "args": {}}
    assert comm.sendToExperiment(message) == 1
    assert comm.sendToNode(message, "n1") == (2, ["n1"])
    assert comm.sendToNodes(message, ["n[23]"]) == (3, ["n2", "n3"])
    assert comm.sendToNodeThatHas(message, "link7") == (4, ["n2"])
    assert comm.sendToNodeThatHas(message, "198.18.1.1") == (5, ["n1"])
    lab.reactor.advance(0)
    (datagram,) = lab.datagrams()
    assert [m["target"] for m in datagram.messages] == ["*", ["n1"], ["n2", "n3"], ["n2"], ["n1"]]


def test_targeted_send_to_nobody_raises_and_sends_nothing(lab):
    lab.register("n1")
    with pytest.raises(TargetError):
        lab.c.comm.sendToNode({"type": "COMMAND"}, "zz")
    lab.reactor.advance(0)
    assert lab.sender.take() == []


def test_send_to_sinks_reaches_subscribed_clients_and_sink_nodes(lab):
    sink_node = lab.register("n3", attributes={"sink": "true"})
    lab.register("n1")
    watcher = lab.client("bob")
    lab.request(watcher, {"type": "SUBSCRIBE", "id": 1})
    assert lab.c.comm.sendToSinks({"type": "STREAM", "name": "x"}) == 2
    assert sink_node.of_type("STREAM") and watcher.of_type("STREAM")


def test_check_serial_records_acknowledgements_and_lag(lab):
    lab.register("n1")
    lab.request(lab.client(), {"type": "COMMAND", "id": 1, "agent": "NOOP", "group": "g",
                               "command": "START"})
    comm = lab.c.comm
    assert comm.checkSerial("n1", 0) == 1
    assert comm.checkSerial("n1", 1) == 0
    assert comm.checkSerial("n1", 0) == 0  # acknowledgements never go backwards
