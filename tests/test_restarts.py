"""Restarts never change what ran: runs that ended stay ended, and a
controller restarted after SIGKILL knows every node it knew (unit tests on
fakes; the end-to-end proofs are in tests/faults/)."""

from __future__ import annotations

from controller_lab import CATALOGUE, command, make_controller
from backend.agent import Agent
from backend.controller.statemodel import StateModel
from backend.node.dispatcher import Dispatcher
from backend.runtime.agentloader import AgentRegistry
from backend.runtime.context import AgentContext
from seer.protocol.wire import Frame
from seer.testing import FakeReactor, FakeSession


def start(group="g", time=None):
    message = {"type": "COMMAND", "agent": "A", "group": group, "command": "START", "args": {}}
    if time is not None:
        message["time"] = time
    return message


def set_vars(group="g", **values):
    return {"type": "SET", "agent": "A", "group": group, "vars": values}


# -- the state model -------------------------------------------------------------------


def test_a_run_the_node_reported_over_is_finished_in_its_snapshot_not_running():
    m = StateModel()
    m.apply(1, start(), None, 10.0)
    assert m.end_run("n1", "A", "g", 1, 15.0, "flood: exit code 0")
    (n1,) = m.snapshot_for("n1", 700.0)["groups"]
    assert n1["run"] == "finished" and "flood: exit code 0" in n1["why"]
    (n2,) = m.snapshot_for("n2", 700.0)["groups"]
    assert n2["run"] == "running" and "why" not in n2  # its run did not end


def test_a_new_start_after_the_end_runs_again():
    m = StateModel()
    m.apply(1, start(), None, 10.0)
    m.end_run("n1", "A", "g", 1, 15.0, "done")
    m.apply(2, start(), None, 20.0)
    assert m.snapshot_for("n1", 21.0)["groups"][0]["run"] == "running"
    # A late report of the old run does not end the new one.
    m.end_run("n1", "A", "g", 1, 22.0, "done")
    assert m.snapshot_for("n1", 23.0)["groups"][0]["run"] == "running"


def test_a_run_past_its_duration_is_finished_even_unreported():
    m = StateModel()
    m.apply(1, set_vars(duration={"*": 5, "n2": 50}), None, 0.0)
    m.apply(2, start(), None, 10.0)
    assert m.snapshot_for("n1", 14.0)["groups"][0]["run"] == "running"
    late = m.snapshot_for("n1", 16.0)["groups"][0]
    assert late["run"] == "finished" and "duration 5 s" in late["why"]
    assert m.snapshot_for("n2", 16.0)["groups"][0]["run"] == "running"


def test_a_start_scheduled_for_later_stays_scheduled():
    m = StateModel()
    m.apply(1, set_vars(duration=5), None, 0.0)
    m.apply(2, start(time=100.0), None, 10.0)
    snap = m.snapshot_for("n1", 50.0)
    assert snap["groups"][0]["run"] is None
    assert [s for s, _ in snap["scheduled"]] == [2]


def test_the_end_of_a_run_survives_a_checkpoint():
    m = StateModel()
    m.apply(1, start(), None, 10.0)
    m.end_run("n1", "A", "g", 1, 15.0, "done")
    again = StateModel.from_json(m.to_json())
    assert again.snapshot_for("n1", 99.0) == m.snapshot_for("n1", 99.0)
    assert again.snapshot_for("n1", 99.0)["groups"][0]["run"] == "finished"


# -- the node -----------------------------------------------------------------------


class Bounded(Agent):
    AGENT_TYPE = "BOUNDED"

    started = False

    def handleSTART(self):
        self.started = True
        return {"started": True}

    def handleSTOP(self):
        return None

    def handleEND(self):
        self.runFinished("generator done")


def dispatcher_with(ended: list):
    registry = AgentRegistry()
    registry.add(Bounded, "test")
    reactor = FakeReactor()
    outcomes: list = []
    holder: dict = {}

    def context(agent_type, group):
        return AgentContext(node="n1", agent_type=agent_type, group=group, reactor=reactor,
                            run_finished=lambda why: holder["d"].run_finished(
                                (agent_type, group), why))

    d = Dispatcher("n1", registry, context, lambda *o: outcomes.append(o), reactor)
    d.on_run_ended = lambda *run: ended.append(run)
    holder["d"] = d
    return d, outcomes


def bounded(serial_command):
    return {"type": "COMMAND", "agent": "BOUNDED", "group": "g", "command": serial_command,
            "args": {}, "target": "*"}


def test_a_run_that_ends_by_itself_is_reported_with_the_serial_that_started_it():
    ended: list = []
    d, _ = dispatcher_with(ended)
    d.dispatch(7, bounded("START"))
    d.dispatch(8, bounded("END"))
    assert ended == [("BOUNDED", "g", 7, "generator done")]
    assert d.run_state[("BOUNDED", "g")] == "finished"
    d.dispatch(9, bounded("END"))  # over already: said once
    assert len(ended) == 1


def test_a_stopped_run_is_not_reported_as_finished():
    ended: list = []
    d, _ = dispatcher_with(ended)
    d.dispatch(1, bounded("START"))
    d.dispatch(2, bounded("STOP"))
    d.dispatch(3, bounded("END"))
    assert ended == []


def test_a_snapshot_never_resumes_a_finished_run_and_resumes_a_running_one():
    d, _ = dispatcher_with([])
    done = d.apply_snapshot([
        {"agent": "BOUNDED", "group": "over", "vars": {}, "run": "finished",
         "why": "its run ended on this node at 15.000 (done)", "start": 3},
        {"agent": "BOUNDED", "group": "web", "vars": {}, "run": "running", "start": 4},
    ])
    assert done.called and done.result == []
    assert not d.instances[("BOUNDED", "over")].started
    assert d.run_state.get(("BOUNDED", "over")) != "running"
    assert d.instances[("BOUNDED", "web")].started
    assert d.run_started[("BOUNDED", "web")] == 4


# -- the controller ------------------------------------------------------------------


def crash_and_restart(lab, tmp_path, certs_dir):
    """As after SIGKILL: no stopService, no final checkpoint."""
    lab.c.running = False
    reactor = FakeReactor()
    reactor.advance(1_000_010)
    return reactor, make_controller(reactor, certs_dir, tmp_path / "state")


def test_a_run_reported_over_stays_over_across_a_controller_crash(lab, tmp_path, certs_dir):
    n1 = lab.register("n1")
    lab.request(lab.client(), command(agent="NOOP", command="START", target="n1"))
    lab.c.frameReceived(n1, Frame({"type": "REPORT", "ack": 1, "outcomes": [[1, "applied", None, None]],
                                   "runs": [{"agent": "NOOP", "group": "g", "start": 1,
                                             "at": 1_000_005.0, "why": "flood: exit code 0"}]}))
    reactor, again = crash_and_restart(lab, tmp_path, certs_dir)
    fresh = FakeSession("n1", "node")
    again.sessionOpened(fresh)
    again.frameReceived(fresh, Frame({"type": "INFO", "name": "n1", "agents": CATALOGUE,
                                      "epoch": 0, "serial": 0}))
    (welcome,) = fresh.of_type("WELCOME")
    (group,) = welcome.get("snapshot")["groups"]
    assert group["run"] == "finished" and "flood: exit code 0" in group["why"]
    assert again.nodes.get("n1").snapshot["not_resumed"][0]["group"] == "NOOP g"
    again.stopService()


def test_registrations_since_the_checkpoint_survive_a_crash(lab, tmp_path, certs_dir):
    lab.reactor.advance(5)  # the start-up checkpoint is behind us
    for name in ("n1", "n2", "n3"):
        lab.register(name, attributes={"role": name})
    reactor, again = crash_and_restart(lab, tmp_path, certs_dir)
    for name in ("n1", "n2", "n3"):
        record = again.nodes.get(name)
        assert record.registered and not record.up and record.restored
        assert record.attributes == {"role": name} and "NOOP" in record.agents
        assert record.state == "not reconnected"
    # n* covers every known node; none is refused for a missing catalogue.
    n1 = FakeSession("n1", "node")
    again.sessionOpened(n1)
    again.frameReceived(n1, Frame({"type": "INFO", "name": "n1", "agents": CATALOGUE,
                                   "epoch": again.comm.epoch, "serial": 0}))
    alice = FakeSession("alice", "experimenter")
    again.sessionOpened(alice)
    again.frameReceived(alice, Frame(command(target="n[1-3]", timeout=3)))
    reactor.advance(0)
    assert alice.of_type("ERROR") == []
    assert alice.of_type("ACCEPTED")[0].get("nodes") == ["n1", "n2", "n3"]
    again.frameReceived(n1, Frame({"type": "REPORT", "ack": 1,
                                   "outcomes": [[1, "applied", None, None]]}))
    reactor.advance(3)
    outcomes = alice.of_type("RESULT")[0].get("outcomes")
    assert outcomes["n1"] == {"status": "applied"}
    for name in ("n2", "n3"):
        assert outcomes[name] == {"status": "unconfirmed",
                                  "error": "not reconnected since the controller restarted"}
    again.stopService()


def test_a_checkpoint_keeps_the_catalogues_once(lab, tmp_path, certs_dir):
    for name in ("n1", "n2"):
        lab.register(name)
    lab.c.checkpoint()
    state = lab.c.nodes.to_json()
    assert len(state["catalogues"]) == 1
    assert {r["catalogue"] for r in state["records"] if r["registered"]} == \
        set(state["catalogues"])
    lab.c.stopService()
    again = make_controller(lab.reactor, certs_dir, tmp_path / "state")
    assert "NOOP" in again.nodes.get("n2").agents
    again.stopService()


def test_a_node_gone_for_good_is_forgotten_on_purpose_and_stays_forgotten(lab, tmp_path,
                                                                          certs_dir):
    lab.reactor.advance(5)
    n2 = lab.register("n2")
    alice = lab.client()
    lab.request(alice, {"type": "FORGET", "id": 1, "node": "n2"})
    assert "node n2 is up" in alice.of_type("ERROR")[0].get("error")
    lab.c.sessionClosed(n2, None)
    lab.request(alice, {"type": "FORGET", "id": 2, "node": "zz"})
    assert "no node 'zz' is known" in alice.of_type("ERROR")[-1].get("error")
    lab.request(alice, {"type": "FORGET", "id": 3, "node": "n2"})
    assert alice.of_type("REPLY")[-1].get("forgotten") == "n2"
    assert lab.c.nodes.get("n2") is None
    _, again = crash_and_restart(lab, tmp_path, certs_dir)
    assert again.nodes.get("n2") is None
    again.stopService()


def test_groups_shows_each_nodes_run_state_with_why(lab):
    n1 = lab.register("n1")
    lab.register("n2")
    alice = lab.client()
    lab.request(alice, command(command="START"))
    lab.c.frameReceived(n1, Frame({"type": "REPORT", "ack": 1, "runs": [
        {"agent": "NOOP", "group": "g", "start": 1, "at": 1_000_001.0, "why": "done"}]}))
    lab.request(alice, {"type": "GROUPS", "id": 9})
    groups = alice.of_type("REPLY")[-1].get("groups")
    assert groups["n1"][0]["run"] == "finished" and "done" in groups["n1"][0]["why"]
    assert groups["n2"][0]["run"] == "running"
    lab.request(alice, {"type": "GROUPS", "id": 10, "target": "zz"})
    assert "matches no node" in alice.of_type("ERROR")[-1].get("error")


def test_a_command_to_a_group_that_exists_nowhere_is_refused_naming_those_that_do(lab):
    lab.register("n1")
    lab.register("n2")
    alice = lab.client()
    lab.request(alice, {"type": "SET", "id": 1, "agent": "NOOP", "group": "g", "vars": {"note": "x"},
                        "target": "n1"})
    lab.request(alice, command(id=2, command="STOP", group="ff"))
    error = alice.of_type("ERROR")[-1].get("error")
    assert "NOOP group 'ff' exists on none of the targeted nodes" in error
    assert "the NOOP groups: g" in error
    lab.request(alice, command(id=3, command="STOP", target="n2"))  # g is on n1 only
    assert "exists on none of the targeted nodes" in alice.of_type("ERROR")[-1].get("error")
    lab.request(alice, command(id=4, command="STOP", target="n1,n2"))
    assert alice.of_type("ACCEPTED")[-1].get("id") == 4
    lab.request(alice, command(id=5, group="new"))  # START makes a group
    assert alice.of_type("ACCEPTED")[-1].get("id") == 5


def test_an_attack_agent_is_not_started_everywhere_by_default(lab):
    lab.register("n1")
    lab.register("n2")
    alice = lab.client()
    lab.request(alice, command(id=1, agent="FLOOD", group="f"))
    assert "FLOOD makes attack traffic: say where it runs" in alice.of_type("ERROR")[-1].get("error")
    lab.request(alice, command(id=2, agent="FLOOD", group="f", target="n2"))
    assert alice.of_type("ACCEPTED")[-1].get("id") == 2
    lab.request(alice, {"type": "SET", "id": 3, "agent": "FLOOD", "group": "h",
                        "vars": {"NODES": "n1"}})
    lab.request(alice, command(id=4, agent="FLOOD", group="h"))  # NODES says where
    assert alice.of_type("ACCEPTED")[-1].get("id") == 4
