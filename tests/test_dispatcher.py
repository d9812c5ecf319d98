"""The Dispatcher: instances on demand, per-group order, outcomes for all."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from backend.agent import Agent, AgentContext, Var
from backend.runtime.agentloader import AgentRegistry
from backend.node.dispatcher import Dispatcher


class Calls:
    """What one test's SLOW agents did: no class-level state shared between tests."""

    def __init__(self) -> None:
        self.pending: list[Deferred] = []
        self.log: list[str] = []


def slow_agent(calls: Calls) -> type[Agent]:
    class Slow(Agent):
        AGENT_TYPE = "SLOW"
        VARIABLES = [Var("rate", "int", 1, "a rate")]

        def configDone(self):
            d = Deferred()
            calls.pending.append(d)
            calls.log.append(f"configDone rate={self.getNodeVar('rate')}")
            return d

        def handleSTART(self):
            calls.log.append("START")

        def handleSTOP(self):
            calls.log.append("STOP")

        def handleBOOM(self, args):
            raise RuntimeError(f"boom {args.get('x')}")

        def handleNEVER(self):
            return Deferred()

        def handleREFUSE(self):
            raise ValueError("not on a Sunday")

    return Slow


class Other(Agent):
    AGENT_TYPE = "OTHER"

    def handlePING(self):
        return {"pong": True}


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def setup(calls):
    registry = AgentRegistry()
    registry.add(slow_agent(calls), "test")
    registry.add(Other, "test")
    clock = Clock()
    outcomes: list = []
    d = Dispatcher("n1", registry,
                   lambda t, g: AgentContext(node="n1", agent_type=t, group=g, reactor=clock),
                   lambda *o: outcomes.append(o[:4]), clock, handler_timeout=30)
    return d, outcomes, clock


def cmd(command, agent="SLOW", group="g", target="*", **args):
    return {"type": "COMMAND", "agent": agent, "group": group, "command": command,
            "args": args, "target": target}


def test_messages_for_other_nodes_are_not_dispatched(setup):
    d, outcomes, _ = setup
    assert not d.dispatch(1, cmd("START", target=["n2"]))
    assert outcomes == [] and d.instances == {}


def test_start_waits_for_an_asynchronous_set_of_the_same_group(setup, calls):
    d, outcomes, _ = setup
    d.dispatch(1, {"type": "SET", "agent": "SLOW", "group": "g", "vars": {"rate": 5}, "target": "*"})
    d.dispatch(2, cmd("START"))
    d.dispatch(3, cmd("PING", agent="OTHER"))
    # The other group went ahead; START waits behind configDone.
    assert calls.log == ["configDone rate=5"]
    assert outcomes == [(3, "applied", None, {"pong": True})]
    calls.pending[0].callback(None)
    assert calls.log == ["configDone rate=5", "START"]
    assert [o[:2] for o in outcomes] == [(3, "applied"), (1, "applied"), (2, "applied")]
    assert d.run_state[("SLOW", "g")] == "running"


def test_handler_exception_fails_that_outcome_with_a_short_traceback(setup):
    d, outcomes, _ = setup
    d.dispatch(1, cmd("BOOM", x=7))
    d.dispatch(2, cmd("START"))
    serial, status, error, result = outcomes[0]
    assert (serial, status) == (1, "failed")
    assert error.startswith("RuntimeError: boom 7 [at handleBOOM (test_dispatcher.py:")
    assert outcomes[1][:2] == (2, "applied")


def test_unknown_agent_type_and_command_fail_with_what_exists(setup):
    d, outcomes, _ = setup
    d.dispatch(1, cmd("START", agent="NOPE"))
    d.dispatch(2, cmd("LAUNCH"))
    assert "no agent of type 'NOPE' on this node (loaded: OTHER, SLOW)" in outcomes[0][2]
    assert "SLOW has no command 'LAUNCH' (commands: BOOM, NEVER, REFUSE, START, STATS, STOP, VARS)" in outcomes[1][2]


def test_bad_set_fails_and_changes_nothing(setup, calls):
    d, outcomes, _ = setup
    d.dispatch(1, {"type": "SET", "agent": "SLOW", "group": "g", "vars": {"rate": 2}, "target": "*"})
    calls.pending[0].callback(None)
    d.dispatch(2, {"type": "SET", "agent": "SLOW", "group": "g",
                   "vars": {"rate": "fast", "bogus": 1}, "target": "*"})
    assert outcomes[1][1] == "failed"
    assert "rate: expected an integer" in outcomes[1][2] and "no variable 'bogus'" in outcomes[1][2]
    assert d.instances[("SLOW", "g")].getNodeVar("rate") == 2


def test_nodes_variable_decides_who_takes_part(setup):
    d, outcomes, _ = setup
    d.dispatch(1, {"type": "SET", "agent": "OTHER", "group": "g", "vars": {"NODES": "n2 n3"},
                   "target": "*"})
    d.dispatch(2, cmd("PING", agent="OTHER"))
    assert outcomes[1][:2] == (2, "skipped")
    assert "n1 is not in NODES" in outcomes[1][2]


def test_a_handler_that_never_finishes_times_out_and_frees_the_group(setup):
    d, outcomes, clock = setup
    d.dispatch(1, cmd("NEVER"))
    d.dispatch(2, cmd("START"))
    assert outcomes == []
    clock.advance(30)
    assert outcomes[0][:2] == (1, "failed") and "TimeoutError" in outcomes[0][2]
    assert outcomes[1][:2] == (2, "applied")


def test_snapshot_restores_variables_and_run_state(setup):
    d, outcomes, _ = setup
    done = []
    d.apply_snapshot([{"agent": "OTHER", "group": "x", "vars": {"NODES": ["n1"]}, "run": None},
                      {"agent": "NOPE", "group": "y", "vars": {}, "run": "running"}]
                     ).addCallback(done.append)
    assert d.instances[("OTHER", "x")].getNodeVar("NODES") == ["n1"]
    assert len(done[0]) == 1 and "snapshot of NOPE y" in done[0][0]


def test_snapshot_starts_a_group_that_should_be_running(setup, calls):
    d, outcomes, _ = setup
    d.apply_snapshot([{"agent": "SLOW", "group": "g", "vars": {"rate": 3}, "run": "running"}])
    calls.pending[0].callback(None)
    assert calls.log == ["configDone rate=3", "START"]
    assert d.run_state[("SLOW", "g")] == "running"
    assert outcomes == []  # snapshots report through the daemon, not per message


def test_a_refusal_needs_no_traceback(setup):
    d, outcomes, _ = setup
    d.dispatch(1, cmd("REFUSE"))
    assert outcomes[0][2] == "ValueError: not on a Sunday"


def test_outcomes_say_when_the_node_started_on_the_message(setup):
    d, _, clock = setup
    seen = []
    d.on_outcome = lambda *o: seen.append(o)
    clock.advance(50)
    d.dispatch(1, cmd("NEVER"))
    clock.advance(30)  # it times out 30 s later, but it started at 50
    assert seen[0][:2] == (1, "failed") and seen[0][4] == 50.0
