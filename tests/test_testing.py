"""seer.testing's own doubles: the agent harness and the fake process reactor."""

from __future__ import annotations

import signal

import pytest
from twisted.internet.task import deferLater

from backend.agent import Agent, Var
from seer.protocol.targets import TargetError
from seer.testing import AgentHarness


def make_counter():
    """A fresh agent class per test: no state shared between tests."""

    class Counter(Agent):
        AGENT_TYPE = "COUNTER"
        VARIABLES = [Var("step", "int", 1, "how much ADD adds")]

        def setup(self):
            self.total = 0

        def handleADD(self, args):
            if args.get("times", 1) < 0:
                raise ValueError("times must not be negative")
            self.total += args.get("times", 1) * self.getNodeVar("step")
            self.report("added", total=self.total)
            return {"total": self.total}

        def handleLATER(self):
            return deferLater(self.reactor, 5, lambda: {"late": True})

        def handleNEVER(self):
            return deferLater(self.reactor, 10**6, lambda: None)

        def handleSTART(self):
            self.spawn(["sleep", "60"], name="sleeper")

        def handleRUN(self):
            return self.runProcess(["echo", "hi"])

        def handleSTOP(self):
            return self.stopProcesses()

    return Counter


def test_set_and_commands_run_through_the_dispatcher_per_node():
    h = AgentHarness(make_counter(), nodes=["n1", "n2"])
    assert h.set(step={"*": 5, "n2": 100}).ok
    added = h.command("ADD", times=2)
    assert {n: o.result for n, o in added.items()} == {"n1": {"total": 10}, "n2": {"total": 200}}
    assert added.ok and added["n1"].serial == 2
    assert h.events("added") == {"n1": {"total": 10}, "n2": {"total": 200}}
    assert h.instance("n2").total == 200


def test_a_failed_command_and_a_refused_set_say_why():
    h = AgentHarness(make_counter())
    refused = h.command("ADD", {"times": -1})
    assert refused["n1"].status == "failed" and not refused.ok
    assert refused["n1"].error == "ValueError: times must not be negative"
    bad = h.set(step="many", colour="red")
    assert bad["n1"].status == "failed"
    assert "step: expected an integer" in bad["n1"].error
    assert "no variable 'colour'" in bad["n1"].error
    assert h.instance().getNodeVar("step") == 1  # nothing of it applied
    unknown = h.command("LAUNCH")
    assert "COUNTER has no command 'LAUNCH'" in unknown["n1"].error


def test_a_deferred_outcome_is_pending_until_the_clock_moves():
    h = AgentHarness(make_counter())
    later = h.command("LATER")
    assert later["n1"].status == "pending" and later.pending == ["n1"]
    h.advance(4.9)
    assert later.pending == ["n1"]
    h.advance(0.1)
    assert later["n1"].result == {"late": True} and later.ok


def test_a_handler_that_never_finishes_times_out_on_the_clock():
    h = AgentHarness(make_counter(), handler_timeout=30)
    never = h.command("NEVER")
    h.advance(30)
    assert never["n1"].status == "failed" and "TimeoutError" in never["n1"].error


def test_targets_are_resolved_like_the_controllers_and_nodes_outside_say_nothing():
    h = AgentHarness(make_counter(), nodes=["n1", "n2", "n3"],
                     node_info={"n3": {"attributes": {"sink": "yes"}}})
    assert sorted(h.command("ADD", target="n[1-2]")) == ["n1", "n2"]
    assert sorted(h.command("ADD", target="@sink")) == ["n3"]
    assert h.instance("n3").total == 1 and h.instance("n1").total == 1
    with pytest.raises(TargetError, match="matches no node"):
        h.command("ADD", target="web*")


def test_nodes_outside_the_groups_nodes_are_skipped():
    h = AgentHarness(make_counter(), nodes=["n1", "n2"])
    h.set(NODES="n2")
    added = h.command("ADD")
    assert added["n1"].status == "skipped" and added["n2"].ok


def test_processes_the_agent_starts_are_fake_and_stopped_on_the_clock():
    h = AgentHarness(make_counter())
    assert h.start().ok
    (sleeper,) = h.reactor.alive("sleep")
    assert h.instance().pids == [sleeper.pid]
    stopped = h.stop()
    assert stopped.pending == ["n1"] and sleeper.signals == [signal.SIGTERM]
    h.advance(0)  # it dies a turn after the signal; the sweep for strays follows
    assert stopped.ok and h.reactor.alive() == [] and h.instance().pids == []
    assert h.run_state() == "stopped"


def test_a_tool_run_to_completion_gives_its_output_as_the_result():
    h = AgentHarness(make_counter())
    h.reactor.programs["echo"] = lambda p: (p.output(b"hi\n"), p.exit(0))
    ran = h.command("RUN")
    assert ran.pending == ["n1"]
    h.advance(0)
    assert ran["n1"].result == "hi"


def test_close_stops_every_process_even_one_that_ignores_sigterm(tmp_path):
    h = AgentHarness(make_counter(), workdir=tmp_path)
    h.start()
    (sleeper,) = h.reactor.alive()
    sleeper.ignore(signal.SIGTERM)
    h.close()
    assert sleeper.signals == [signal.SIGTERM, signal.SIGKILL] and h.reactor.alive() == []
    assert (tmp_path / "n1" / "COUNTER-test" / "agent.log").exists()


def test_an_agent_module_can_be_tested_from_its_path(tmp_path):
    module = tmp_path / "greeter.py"
    module.write_text(
        "from backend.agent import Agent\n\n"
        "class Greeter(Agent):\n"
        "    AGENT_TYPE = 'GREETER'\n\n"
        "    def handleGREET(self):\n"
        "        return {'greeting': 'hello from ' + self.nodename}\n")
    with AgentHarness(module, nodes=["a", "b"]) as h:
        assert h.command("GREET")["b"].result == {"greeting": "hello from b"}
    broken = tmp_path / "broken.py"
    broken.write_text("import nonexistent_module_for_seer\n")
    with pytest.raises(ImportError, match="nonexistent_module_for_seer"):
        AgentHarness(broken)


def test_the_default_workdir_is_temporary_and_removed_by_close():
    h = AgentHarness(make_counter())
    h.start()
    workdir = h.workdir
    assert (workdir / "n1" / "COUNTER-test").is_dir()
    h.close()
    assert not workdir.exists()
