"""The Dispatcher: instances on demand, per-group order, outcomes for all."""

from __future__ import annotations

import sys

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


# -- one bad message never harms another ------------------------------------------------


class Bad(Agent):
    """A legacy-style agent that goes wrong in every way it can."""

    AGENT_TYPE = "BAD"
    VARIABLES = [Var("mode", "string", "", "what goes wrong")]

    def processArgs(self, args):
        if args.get("mode") == "processArgs":
            raise RuntimeError("processArgs broke")
        super().processArgs(args)

    def validate(self, new):
        if (new.get("mode") or {}).get("*") == "validate":
            raise LookupError("validate broke")

    def handleEXIT(self):
        sys.exit(3)

    def handleINTERRUPT(self):
        raise KeyboardInterrupt

    def handleGENERATOREXIT(self):
        raise GeneratorExit

    def handleRESULT(self, args):
        return {"object": {"x": object()}, "nan": {"x": float("nan")},
                "inf": [1, float("inf")], "key": {("a", "b"): 1},
                "big": {"x": "y" * (2 << 20)}, "top": Var("v", "int", 1, "")}[args["kind"]]

    def handleLATER(self, args):
        d = Deferred()
        self.reactor.callLater(1, d.callback, {"x": float(args.get("value", "nan"))})
        return d

    def handleREPORT(self):
        self.report("odd", thing=object(), number=float("nan"))

    def handleOK(self):
        return {"ok": True}


def bad_setup_agent(failing: list[bool]) -> type[Agent]:
    class BadSetup(Agent):
        AGENT_TYPE = "BADSETUP"

        def setup(self):
            if failing[0]:
                raise SystemExit("setup gave up")

        def handleOK(self):
            return "fine"

    return BadSetup


class Async(Agent):
    AGENT_TYPE = "ASYNC"

    async def handleWAIT(self):
        return {"awaited": True}


@pytest.fixture
def setup_fails() -> list[bool]:
    return [True]


@pytest.fixture
def bad_setup(setup_fails):
    registry = AgentRegistry()
    for cls in (Bad, bad_setup_agent(setup_fails), Async, Other):
        registry.add(cls, "test")
    clock = Clock()
    outcomes: list = []
    events: list = []
    d = Dispatcher("n1", registry,
                   lambda t, g: AgentContext(node="n1", agent_type=t, group=g, reactor=clock,
                                             report=lambda e, data: events.append((e, data))),
                   lambda *o: outcomes.append(o[:4]), clock, handler_timeout=30)
    return d, outcomes, clock, events


def bad_set(mode, group="g"):
    return {"type": "SET", "agent": "BAD", "group": group, "vars": {"mode": mode}, "target": "*"}


@pytest.mark.parametrize("mode, error", [
    ("processArgs", "RuntimeError: processArgs broke [at processArgs (test_dispatcher.py:"),
    ("validate", "LookupError: validate broke [at validate (test_dispatcher.py:"),
])
def test_processargs_or_validate_raising_fails_that_set_alone_and_the_group_goes_on(
        bad_setup, mode, error):
    d, outcomes, _, _ = bad_setup
    d.dispatch(1, bad_set(mode))
    d.dispatch(2, cmd("PING", agent="OTHER", group="healthy"))
    d.dispatch(3, cmd("OK", agent="BAD"))
    assert [o[:2] for o in outcomes] == [(1, "failed"), (2, "applied"), (3, "applied")]
    assert outcomes[0][2].startswith(error), outcomes[0][2]
    assert d.instances[("BAD", "g")].getNodeVar("mode") == ""  # the SET changed nothing
    assert d._queues == {}  # no group is left waiting


@pytest.mark.parametrize("command, error", [
    ("EXIT", "SystemExit: 3 [at handleEXIT (test_dispatcher.py:"),
    ("INTERRUPT", "KeyboardInterrupt [at handleINTERRUPT (test_dispatcher.py:"),
    ("GENERATOREXIT", "GeneratorExit [at handleGENERATOREXIT (test_dispatcher.py:"),
])
def test_sys_exit_and_keyboard_interrupt_in_a_handler_fail_that_message_alone(
        bad_setup, command, error):
    d, outcomes, _, _ = bad_setup
    assert d.dispatch(1, cmd(command, agent="BAD")) is True
    d.dispatch(2, cmd("OK", agent="BAD"))
    assert [o[:2] for o in outcomes] == [(1, "failed"), (2, "applied")]
    assert outcomes[0][2].startswith(error), outcomes[0][2]
    assert outcomes[1][3] == {"ok": True}


@pytest.mark.parametrize("kind, why", [
    ("object", "result['x'] is an object (<object object at"),
    ("nan", "result['x'] is nan, which JSON cannot carry"),
    ("inf", "result[1] is inf, which JSON cannot carry"),
    ("key", "result has a key of type tuple (('a', 'b'))"),
    ("big", "the result is 2097160 bytes of JSON, more than the 1048576 an outcome may carry"),
])
def test_a_result_json_cannot_carry_fails_that_message_saying_what_and_where(
        bad_setup, kind, why):
    d, outcomes, _, _ = bad_setup
    d.dispatch(1, cmd("RESULT", agent="BAD", kind=kind))
    d.dispatch(2, cmd("PING", agent="OTHER"))
    (serial, status, error, result), healthy = outcomes
    assert (serial, status, result) == (1, "failed", None)
    assert error.startswith("handleRESULT returned what cannot be sent back: ")
    assert why in error, error
    assert healthy == (2, "applied", None, {"pong": True})


def test_a_top_level_result_of_another_type_is_its_text_as_before(bad_setup):
    d, outcomes, _, _ = bad_setup
    d.dispatch(1, cmd("RESULT", agent="BAD", kind="top"))
    assert outcomes[0][:2] == (1, "applied") and outcomes[0][3].startswith("Var(name='v'")


def test_a_deferred_result_json_cannot_carry_fails_when_it_comes(bad_setup):
    d, outcomes, clock, _ = bad_setup
    d.dispatch(1, cmd("LATER", agent="BAD"))
    d.dispatch(2, cmd("LATER", agent="BAD", value="2.5"))
    clock.advance(1)
    assert outcomes[0][:2] == (1, "failed") and "result['x'] is nan" in outcomes[0][2]
    clock.advance(1)
    assert outcomes[1] == (2, "applied", None, {"x": 2.5})


def test_event_data_json_cannot_carry_is_made_safe_not_lost(bad_setup):
    d, outcomes, _, events = bad_setup
    d.dispatch(1, cmd("REPORT", agent="BAD"))
    assert outcomes[0][:2] == (1, "applied")
    ((event, data),) = events
    assert event == "odd" and data["number"] == "nan"
    assert data["thing"].startswith("<object object at")


def test_an_instance_that_cannot_be_made_fails_each_message_until_it_can(bad_setup,
                                                                        setup_fails):
    d, outcomes, _, _ = bad_setup
    d.dispatch(1, cmd("OK", agent="BADSETUP"))
    setup_fails[0] = False
    d.dispatch(2, cmd("OK", agent="BADSETUP"))
    assert outcomes[0][:2] == (1, "failed") and outcomes[0][2].startswith(
        "SystemExit: setup gave up [at setup (test_dispatcher.py:")
    assert outcomes[1] == (2, "applied", None, "fine")


def test_an_async_def_handler_is_awaited(bad_setup):
    d, outcomes, _, _ = bad_setup
    d.dispatch(1, cmd("WAIT", agent="ASYNC"))
    assert outcomes == [(1, "applied", None, {"awaited": True})]


def test_dispatch_never_raises_into_the_daemon(bad_setup):
    d, outcomes, _, _ = bad_setup
    assert d.dispatch(1, ["not", "a", "message"]) is True
    d.dispatch(2, cmd("PING", agent="OTHER"))
    assert outcomes[0][:2] == (1, "failed") and "the node could not run it" in outcomes[0][2]
    assert outcomes[1][:2] == (2, "applied")
