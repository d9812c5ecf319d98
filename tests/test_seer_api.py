"""SEER's documented API (its reference pages for backend.agent and
backend.controller, v1.6) works here under the same names and signatures,
where Python allows it.  docs/SEER-API.md says where ours differs, and why.

Each entry below is a name as the reference page writes it.
"""

from __future__ import annotations

import inspect

import pytest

import backend.agent
import backend.controller
from backend.agent import AddressPool, Agent
from backend.controller import CommWrapper, Controller, returnNone

#: backend.agent's documented methods, with their parameters (self omitted).
AGENT_METHODS = {
    "TGStart": [], "TGStop": [], "clientExec": ["src", "dst", "size"], "clientInit": [],
    "clientOneLoop": ["spool", "dpool", "think", "sizes"], "configDone": [],
    "getNodeTable": ["key"], "getNodeVar": ["key", "node"], "launchTrafficController": [],
    "processArgs": ["args"], "serverExec": [], "serverStop": [],
}
ADDRESS_POOL_METHODS = {"Random": [], "RandomNode": [], "Set": ["node", "ranges"]}
#: backend.controller.CommWrapper's: ours name the node, not its socket (docs/SEER-API.md).
COMM_METHODS = {
    "checkSerial": ["node", "serial"], "nodeDown": ["node"], "retireSerials": [],
    "send": ["datagram"], "sendToExperiment": ["msg"], "sendToNode": ["msg", "name"],
    "sendToNodeThatHas": ["msg", "label"], "sendToNodes": ["msg", "nodelist"],
    "sendToSinks": ["msg"],
}
CONTROLLER_HANDLERS = ["handleCOMMAND", "handleEXECUTE", "handleGET", "handleGeneric",
                       "handlePUT", "handleREPORT", "handleSET", "handleSTREAM"]
CONTROLLER_DUTIES = ["createInfoMessage", "doUpdates", "pingExperiment", "subloop"]


def parameters(function) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


@pytest.mark.parametrize("name, params", AGENT_METHODS.items())
def test_agent_methods_have_seers_names_and_parameters(name, params):
    assert parameters(getattr(Agent, name)) == params


@pytest.mark.parametrize("name, params", ADDRESS_POOL_METHODS.items())
def test_address_pool_methods_have_seers_names_and_parameters(name, params):
    assert parameters(getattr(AddressPool, name)) == params


def test_address_pool_is_built_as_seer_documents_it_and_random_unpacks():
    # class backend.agent.AddressPool(nodename=None, fakelist=None)
    signature = inspect.signature(AddressPool)
    assert list(signature.parameters)[:2] == ["nodename", "fakelist"]
    assert signature.parameters["nodename"].default is None
    assert signature.parameters["fakelist"].default is None
    pool = AddressPool("server1", ["198.18.2.10/32"])
    node, address = pool.Random()  # "Pick a random tuple from the pool"
    assert (node, address) == ("server1", "198.18.2.10")
    assert pool.Random().node == "server1" and pool.Random().address == "198.18.2.10"
    assert pool.RandomNode() == "server1"
    assert backend.agent.AddressPool is AddressPool


@pytest.mark.parametrize("name, params", COMM_METHODS.items())
def test_comm_wrapper_methods_have_seers_names(name, params):
    assert parameters(getattr(CommWrapper, name)) == params


def test_the_controller_takes_seers_documented_signature_without_a_reactor(tmp_path):
    # class backend.controller.Controller(multicastaddr, name, cafile, nodefile, required=None)
    signature = inspect.signature(Controller)
    assert list(signature.parameters)[:5] == ["multicastaddr", "name", "cafile", "nodefile",
                                              "required"]
    assert signature.parameters["required"].default is None
    from twisted.internet import reactor

    controller = Controller("239.255.1.1:7701", "ctl", None, ["n1"], None,
                            state_dir=tmp_path / "state")
    assert controller.reactor is reactor  # the default, at this one edge
    assert controller.nodes.get("n1") is not None


@pytest.mark.parametrize("name", CONTROLLER_HANDLERS)
def test_the_controller_has_seers_handlers_taking_sock_and_msg(name):
    assert parameters(getattr(Controller, name)) == ["sock", "msg"]


@pytest.mark.parametrize("name", CONTROLLER_DUTIES)
def test_the_controller_has_seers_duties(name):
    assert parameters(getattr(Controller, name)) == []


def test_return_none_returns_none_whatever_it_is_given():
    assert returnNone() is None and returnNone(1, "x", None) is None
    assert backend.controller.returnNone is returnNone


def test_create_info_message_says_what_the_controller_is_responsible_for(lab):
    lab.register("n1", addresses=["198.18.1.10"])
    info = lab.c.createInfoMessage()
    assert info["type"] == "INFO" and info["name"] == "ctl"
    assert info["nodes"]["n1"] == ["198.18.1.10"]
    assert info["group"] == "239.255.1.1:7701"


def test_subloop_is_called_on_every_tick_of_the_periodic_duties(lab):
    ticks = []
    lab.c.subloop = lambda: ticks.append(lab.reactor.seconds())
    lab.reactor.advance(1.0)
    lab.reactor.advance(1.0)
    assert len(ticks) == 2


def test_handle_generic_refuses_what_has_no_handler_saying_what_is_allowed(lab):
    from seer.protocol.wire import Frame

    alice = lab.client()
    lab.c.frameReceived(alice, Frame({"type": "REBOOT", "id": 7}))
    (error,) = alice.of_type("ERROR")
    assert error.get("id") == 7
    assert "an experimenter may not send REBOOT (allowed:" in error.get("error")
    assert "COMMAND" in error.get("error")
