"""Agent workers on a fake clock: isolated groups in worker processes the
daemon supervises -- spawned, answered, restarted with backoff and brought
back to their state, stopped -- with seer.testing's FakeWorkers playing each
worker with its real code."""

from __future__ import annotations

import pytest
from twisted.internet.defer import maybeDeferred, succeed

from backend.agent import AgentContext
from backend.node.dispatcher import Dispatcher
from backend.node.workers import WorkerSupervisor
from backend.runtime import workerproto as wp
from backend.runtime.agentloader import AgentRegistry
from seer.testing import FakeProcessReactor, FakeWorkers

AGENTS = '''
import os

from twisted.internet.defer import Deferred

from backend.agent import Agent, Var


class Iso(Agent):
    AGENT_TYPE = "ISO"
    VARIABLES = [Var("label", "string", "", "a label")]

    def handleECHO(self, args):
        return {"label": self.getNodeVar("label"), **args}

    def handleSTART(self):
        self.report("started", label=self.getNodeVar("label"))
        if self.getNodeVar("label") == "hang":
            return Deferred()

    def handleSTOP(self):
        pass

    def handleNEVER(self):
        return Deferred()

    def handleTABLE(self):
        return self.context.node_table()

    def handleHIT(self):
        self.count("hits")

    def handleEND(self):
        self.stream("progress", {"done": 1})
        self.runFinished("all sent")


class Inline(Iso):
    AGENT_TYPE = "INLINE"
    ISOLATED = False
'''

TABLE = {"n1": {"addresses": ["10.0.0.1"]}}


class Lab:
    """A Dispatcher with a WorkerSupervisor on a FakeProcessReactor."""

    def __init__(self, tmp_path, load=None) -> None:
        path = tmp_path / "iso.py"
        path.write_text(AGENTS)
        self.registry = AgentRegistry()
        assert self.registry.load_file(path) == ["ISO", "INLINE"]
        self.reactor = FakeProcessReactor()
        self.workers = FakeWorkers(self.reactor, **({"load": load} if load else {}))
        self.swept: list[str] = []
        self.supervisor = WorkerSupervisor(
            self.reactor, blocking=lambda f, *a: maybeDeferred(f, *a), sweep=self.swept.append)
        self.outcomes: list[tuple] = []
        self.events: list[tuple] = []
        self.streams: list[tuple] = []
        self.runs: list[tuple] = []
        self.tmp_path = tmp_path
        self.d = Dispatcher("n1", self.registry, self.context, self._outcome, self.reactor,
                            handler_timeout=30, workers=self.supervisor)
        self.d.on_run_ended = lambda *run: self.runs.append(run)
        self.serial = 0

    def context(self, agent_type: str, group: str) -> AgentContext:
        return AgentContext(
            node="n1", agent_type=agent_type, group=group, reactor=self.reactor,
            report=lambda event, data: self.events.append((group, event, data)),
            stream=lambda name, data: self.streams.append((group, name, data)),
            node_table=lambda: succeed(TABLE), workdir=str(self.tmp_path / group),
            process_tag=f"n1/1/{agent_type}/{group}",
            run_finished=lambda why: self.d.run_finished((agent_type, group), why))

    def _outcome(self, serial, status, error, result, at) -> None:
        self.outcomes.append((serial, status, error, result))

    def send(self, command: str, group: str = "g", agent: str = "ISO", **args) -> int:
        self.serial += 1
        self.d.dispatch(self.serial, {"type": "COMMAND", "agent": agent, "group": group,
                                      "command": command, "args": args, "target": "*"})
        return self.serial

    def set(self, group: str = "g", **variables) -> int:
        self.serial += 1
        self.d.dispatch(self.serial, {"type": "SET", "agent": "ISO", "group": group,
                                      "vars": variables, "target": "*"})
        return self.serial

    def outcome(self, serial: int) -> tuple | None:
        return next((o for o in self.outcomes if o[0] == serial), None)

    def turn(self, seconds: float = 0.0) -> None:
        self.reactor.advance(seconds)
        self.reactor.advance(0)

    def worker(self, group: str = "g"):
        (worker,) = [w for w in self.workers.alive()
                     if any(f.get("group") == group for f in w.received[:1])]
        return worker


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


def test_an_isolated_group_runs_in_a_worker_and_answers(lab):
    serial = lab.send("ECHO", x=1)
    assert lab.outcome(serial) is None  # the worker is starting
    lab.turn()
    assert lab.outcome(serial) == (serial, "applied", None, {"label": "", "x": 1})
    (spawn,) = lab.reactor.spawned
    assert spawn.args[1:] == ["-m", "backend.runtime.worker", "n1/ISO/g"]
    assert spawn.env["PYTHONPATH"].split(":")[0] == str(
        __import__("pathlib").Path(__file__).resolve().parents[1])
    assert lab.d.instances == {}  # the agent object lives in the worker
    inline = lab.send("ECHO", agent="INLINE", y=2)
    assert lab.outcome(inline) == (inline, "applied", None, {"label": "", "y": 2})
    assert len(lab.reactor.spawned) == 1 and ("INLINE", "g") in lab.d.instances


def test_a_worker_that_does_not_answer_holds_up_its_own_group_only(lab):
    stuck = lab.send("NEVER")
    lab.turn()
    after = lab.send("ECHO")  # the same group: waits its turn
    other = lab.send("ECHO", group="other")
    inline = lab.send("ECHO", agent="INLINE")
    lab.turn()
    assert lab.outcome(other)[1] == "applied" and lab.outcome(inline)[1] == "applied"
    assert lab.outcome(stuck) is None and lab.outcome(after) is None
    lab.turn(30)  # the handler timeout
    assert lab.outcome(stuck)[1] == "failed" and "TimeoutError" in lab.outcome(stuck)[2]
    assert lab.outcome(after)[1] == "applied"
    assert {"type": wp.CANCEL, "id": 1} in lab.worker().received


def test_a_worker_that_dies_fails_its_message_and_comes_back_with_the_groups_state(lab):
    lab.set(label="kept")
    start = lab.send("START")
    lab.turn()
    in_flight = lab.send("NEVER")
    queued = lab.send("ECHO")
    lab.turn()
    lab.worker().process.exit(3)  # os._exit(3)
    assert lab.outcome(in_flight) == (
        in_flight, "failed", "agent worker for ISO died (exit code 3); it is restarted with "
        "the group's variables and run state", None)
    assert lab.outcome(queued) is None  # waits for the restart
    assert lab.swept == ["n1/1/ISO/g"]  # what its agent had started is killed
    died = [data for _, event, data in lab.events if event == "worker_died"]
    assert died[0]["how"] == "exit code 3" and died[0]["restart_in"] == 0.5
    lab.turn(0.4)
    assert len(lab.reactor.spawned) == 1
    lab.turn(0.1)
    assert len(lab.reactor.spawned) == 2
    restore = lab.worker().received[1]
    assert restore["type"] == wp.RESTORE and restore["current"] == "stopped"
    assert restore["entry"]["vars"] == {"label": "kept"}
    assert restore["entry"]["run"] == "running" and restore["entry"]["start"] == start
    # The run was started again, as a snapshot would, before the next message.
    assert [data["label"] for _, event, data in lab.events if event == "started"] == \
        ["kept", "kept"]
    assert lab.outcome(queued) == (queued, "applied", None, {"label": "kept"})
    assert any(event == "worker_restarted" for _, event, _ in lab.events)


def test_a_worker_killed_by_a_signal_says_which(lab):
    serial = lab.send("NEVER")
    lab.turn()
    lab.worker().process.exit(signal=11)
    assert lab.outcome(serial)[2].startswith("agent worker for ISO died (signal 11, SIGSEGV)")


def test_restarts_back_off_while_a_worker_keeps_dying_and_reset_once_it_lives(lab):
    lab.send("ECHO")
    lab.turn()
    delays = []
    for _ in range(5):
        lab.worker().process.exit(1)
        delays.append(lab.d.runners[("ISO", "g")]._restart_call.getTime() - lab.reactor.seconds())
        lab.turn(delays[-1])
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]
    lab.turn(10)  # it lived 10 s: the next death restarts it after 0.5 s again
    lab.worker().process.exit(1)
    assert lab.d.runners[("ISO", "g")]._restart_call.getTime() - lab.reactor.seconds() == 0.5


def test_a_message_fails_at_once_when_the_next_restart_is_far_off(lab):
    lab.send("ECHO")
    lab.turn()
    for _ in range(4):
        lab.worker().process.exit(1)
        lab.turn(lab.d.runners[("ISO", "g")]._restart_call.getTime() - lab.reactor.seconds())
    lab.worker().process.exit(1)  # the fifth death in a row: 8 s to the next start
    serial = lab.send("ECHO")
    assert lab.outcome(serial) == (serial, "failed", "agent worker for ISO is down: it died 5 "
                                   "times in a row (last: exit code 1); the next restart is in "
                                   "8 s", None)


def test_a_worker_that_breaks_the_protocol_is_killed_and_restarted(lab):
    serial = lab.send("NEVER")
    lab.turn()
    lab.worker().process.output(b"\xff" * 16)  # not frames
    lab.turn()
    assert lab.outcome(serial)[2].startswith(
        "agent worker for ISO died (killed: it broke the worker protocol (oversized")
    lab.turn(0.5)
    serial = lab.send("ECHO")
    lab.turn()
    assert lab.outcome(serial)[1] == "applied"


def test_reports_streams_run_ends_and_the_node_table_go_through_the_daemon(lab):
    start = lab.send("START")
    table = lab.send("TABLE")
    end = lab.send("END")
    lab.turn()
    assert lab.outcome(table) == (table, "applied", None, TABLE)
    assert lab.outcome(end)[1] == "applied"
    assert ("g", "started", {"label": ""}) in lab.events
    assert lab.streams == [("g", "progress", {"done": 1})]
    assert lab.runs == [("ISO", "g", start, "all sent")]
    assert lab.d.run_state[("ISO", "g")] == "finished"


def test_a_snapshot_restores_an_isolated_group_in_its_worker(lab):
    done = []
    lab.d.apply_snapshot([{"agent": "ISO", "group": "g", "vars": {"label": "snap"},
                           "run": "running", "start": 7}]).addCallback(done.append)
    lab.turn()
    assert done == [[]] and lab.d.run_state[("ISO", "g")] == "running"
    assert lab.d.run_started[("ISO", "g")] == 7
    serial = lab.send("ECHO")
    lab.turn()
    assert lab.outcome(serial)[3] == {"label": "snap"}


def test_shutdown_stops_each_worker_and_restarts_none(lab):
    lab.send("ECHO")
    lab.send("ECHO", group="other")
    lab.turn()
    stopped = lab.d.stop_all()
    lab.turn()
    assert stopped.called
    assert all({"type": wp.STOP} in w.received for w in lab.workers.started)
    assert lab.workers.alive() == [] and lab.swept == []
    lab.turn(60)
    assert len(lab.reactor.spawned) == 2
    serial = lab.send("ECHO")
    assert lab.outcome(serial)[2] == "agent worker for ISO is stopped: the daemon is shutting down"


def test_a_worker_that_ignores_stop_is_killed_after_the_grace_and_swept(lab):
    lab.send("ECHO")
    lab.turn()
    worker = lab.worker()
    worker.process.on_stdin = None  # it no longer reads anything
    stopped = lab.d.stop_all()
    lab.turn(5.9)
    assert not stopped.called
    lab.turn(0.1)
    assert stopped.called and worker.process.signals == [9] and lab.swept == ["n1/1/ISO/g"]


def test_an_agent_the_worker_cannot_load_fails_each_message_until_it_can(tmp_path):
    broken = [True]

    def load(source, agent_type):
        if broken[0]:
            raise SystemExit("the module exits at import")
        return AgentRegistry().load_source(source, agent_type)

    lab = Lab(tmp_path, load=load)
    serial = lab.send("ECHO")
    lab.turn()
    assert lab.outcome(serial)[2] == ("agent worker for ISO could not load agent ISO: "
                                      "SystemExit: the module exits at import")
    broken[0] = False
    lab.turn()
    serial = lab.send("ECHO")
    lab.turn()
    assert lab.outcome(serial)[1] == "applied"
    assert len(lab.reactor.spawned) == 2


def test_the_pollers_see_an_isolated_groups_counters_and_processes(lab):
    lab.send("HIT")
    lab.send("HIT")
    lab.turn()
    mirror = lab.d.groups()[("ISO", "g")]
    assert mirror.counters == {} and mirror.context.processes.running == [
        lab.reactor.spawned[0].pid]  # the worker itself, before its first STATE
    lab.turn(1)
    assert mirror.counters == {"hits": 2}
    lab.worker().process.exit(1)
    assert mirror.context.processes.running == []
    inline = lab.send("HIT", agent="INLINE")
    lab.turn()
    assert lab.outcome(inline)[1] == "applied"
    assert lab.d.groups()[("INLINE", "g")] is lab.d.instances[("INLINE", "g")]


def test_a_restarted_worker_that_does_not_come_back_is_killed_and_tried_again(lab):
    lab.send("START")
    lab.set(label="hang")  # a START now would never finish
    lab.turn()
    lab.worker().process.exit(1)
    lab.turn(0.5)  # restarted; bringing the run back hangs
    waiting = lab.send("ECHO")
    lab.turn(59)
    restarted = lab.reactor.spawned[1]
    assert not restarted.exited and lab.outcome(waiting)[1] == "failed"  # its own timeout
    lab.turn(1)
    assert restarted.signals == [9]
    died = [data["how"] for _, event, data in lab.events if event == "worker_died"]
    assert died[-1] == "killed: it did not bring the group back within 60 s"
