"""What the dashboard shows, on plain data and fakes: topology, node states,
panels, the log tails (both ends of TAIL) and the scripts' output."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from backend.controller.aggregators.links import LinkMap
from backend.controller.aggregators.pipeline import StatsPipeline
from backend.controller.dashboard import topology
from backend.controller.dashboard.details import link_history, node_detail, node_value
from backend.controller.dashboard.live import LiveModel
from backend.controller.dashboard.runlog import RunLog
from backend.controller.dashboard.tails import Tails
from backend.controller.nodetable import NodeTable
from backend.node import logtail
from backend.node.controllerframes import ControllerFrames
from seer.protocol.wire import Frame
from seer.testing import FakeSession

from conftest import EXAMPLE_TOPOLOGIES

# -- topology ---------------------------------------------------------------------------


def demo_described() -> dict:
    from seer.testbed.topology import describe, load_topology

    return describe(load_topology(EXAMPLE_TOPOLOGIES / "demo.toml"))


def test_the_testbeds_topology_file_gives_every_node_and_link(tmp_path):
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(demo_described()))
    drawn = topology.load_file(path)
    assert sorted(n["name"] for n in drawn["nodes"]) == [
        "attacker", "client1", "client2", "client3", "router", "server1"]
    assert [n["name"] for n in drawn["nodes"] if n["router"]] == ["router"]
    links = {link["name"]: link for link in drawn["links"]}
    assert sorted(links) == ["lan1", "lan2", "servers"]
    assert links["servers"]["bandwidth_bps"] == 20e6 and links["servers"]["kind"] == "lan"
    assert sorted(links["servers"]["members"]) == ["router", "server1"]


def test_a_node_that_registered_outside_the_file_is_drawn_too():
    drawn = topology.with_nodes(topology.parse(demo_described()), ["client1", "extra"])
    assert "extra" in [n["name"] for n in drawn["nodes"]]
    again = topology.with_nodes(topology.parse(demo_described()), ["client1"])
    assert drawn["version"] != again["version"]  # the page fetches it again


@pytest.mark.parametrize("content, complaint", [
    ("{not json", "is not JSON"),
    ("[]", "give an object with \"nodes\""),
    ('{"nodes": {"a": {}}, "networks": {"l": {"members": [{"node": "b"}]}}}',
     "lists 'b', which is not one of its nodes"),
])
def test_a_bad_topology_file_is_refused_naming_it(tmp_path, content, complaint):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(topology.TopologyFileError) as caught:
        topology.load_file(path)
    assert str(path) in str(caught.value) and complaint in str(caught.value)


def test_a_missing_topology_file_stops_the_controller_at_start_up(tmp_path, certs_dir):
    from controller_lab import make_controller
    from seer.testing import FakeReactor

    with pytest.raises(topology.TopologyFileError, match="cannot read it"):
        make_controller(FakeReactor(), certs_dir, tmp_path / "state",
                        stats={"http": "127.0.0.1:0"},
                        dashboard={"topology_file": str(tmp_path / "none.json")})


def test_without_a_file_links_and_routers_come_from_the_subnets():
    link_map = LinkMap.build([
        ("r", [{"name": "eth1", "addresses": ["198.18.1.1/24"]},
               {"name": "eth2", "addresses": ["198.18.9.1/30"]}]),
        ("a", [{"name": "eth1", "addresses": ["198.18.1.2/24"]}]),
        ("b", [{"name": "eth1", "addresses": ["198.18.9.2/30"]}]),
    ], {"198.18.1.0/24": "office"})
    drawn = topology.infer(link_map, ["a", "b", "r", "lonely"])
    assert {n["name"]: n["router"] for n in drawn["nodes"]} == {
        "a": False, "b": False, "r": True, "lonely": False}
    kinds = {link["name"]: (link["kind"], sorted(link["members"])) for link in drawn["links"]}
    assert kinds == {"office": ("lan", ["a", "r"]), "198.18.9.0/30": ("link", ["b", "r"])}


@pytest.mark.parametrize("text, bps", [("20mbit", 20e6), ("1.5gbit", 1.5e9), ("500kbit", 5e5),
                                       ("10mbps", 80e6), (None, None), ("fast", None)])
def test_rates_in_tcs_units(text, bps):
    assert topology.rate_bps(text) == bps


# -- node states ------------------------------------------------------------------------


@pytest.fixture
def table():
    nodes = NodeTable(["n1", "n2", "n3", "n4", "never"])
    for name in ("n1", "n2", "n3", "n4"):
        nodes.register({"name": name, "addresses": [], "interfaces": [], "labels": [],
                        "attributes": {}, "agents": {}, "agent_errors": [], "version": ""},
                       100.0, "127.0.0.1:1")
    return nodes


def test_node_states_up_unreachable_down_and_never_registered(table):
    clock = Clock()
    clock.advance(100)
    pipeline = StatsPipeline(clock, table)
    table.get("n2").unreachable_since = 90.0
    table.down("n2", 100.0)
    table.down("n3", 100.0)
    live = LiveModel(table, pipeline, lambda: 0)
    states = {name: entry["state"] for name, entry in live.nodes_now(100.0).items()}
    assert states == {"n1": "up", "n2": "unreachable", "n3": "down", "n4": "up",
                      "never": "never registered"}


def stats_frame(t: float) -> Frame:
    return Frame({"type": "STATS", "time": t, "interval": 1.0, "readings": [
        {"poller": "host", "t": t, "series": [[{}, {"load1": 0.5}]]}]})


def n1_stats(table) -> tuple[StatsPipeline, FakeSession]:
    """A stats pipeline at t=100 and the session of node n1 that feeds it."""
    clock = Clock()
    clock.advance(100)
    session = FakeSession("n1", "node")
    session.state["node"] = "n1"
    return StatsPipeline(clock, table), session


def test_a_node_whose_readings_stopped_is_lagging(table):
    pipeline, session = n1_stats(table)
    pipeline.node_frame(session, stats_frame(100.0))
    live = LiveModel(table, pipeline, lambda: 0)
    assert live.nodes_now(102.0)["n1"]["state"] == "up"
    assert live.nodes_now(104.0)["n1"]["state"] == "lagging"  # 3 intervals without
    assert live.nodes_now(104.0)["n4"]["state"] == "up"  # never sent stats: not lagging for it


def test_a_node_that_sits_on_unacknowledged_serials_is_lagging(table):
    clock = Clock()
    serial = [10]
    live = LiveModel(table, StatsPipeline(clock, table), lambda: serial[0])
    table.acknowledge("n1", 10, 10)
    table.acknowledge("n2", 4, 10)
    first = live.nodes_now(1.0)
    assert (first["n1"]["state"], first["n2"]["state"], first["n2"]["lag"]) == ("up", "up", 6)
    second = live.nodes_now(2.0)  # n2 acknowledged nothing for a tick
    assert (second["n1"]["state"], second["n2"]["state"]) == ("up", "lagging")
    table.acknowledge("n2", 8, 10)  # catching up
    assert live.nodes_now(3.0)["n2"]["state"] == "up"


def test_links_now_keep_what_the_page_uses():
    pipeline = SimpleNamespace(latest={"links": {"servers": {
        "bps": 15_210_000.4, "pps": 1875.2, "drops_ps": 0.0, "utilization": 0.76049,
        "capacity_bps": 20e6, "subnet": "198.18.10.0/24",
        "ends": {"router": {"interface": "eth3", "tx_bps": 15e6, "rx_bps": 2e5}}}}})
    live = LiveModel(NodeTable(), pipeline, lambda: 0)
    assert live.links_now() == {"servers": {
        "bps": 15_210_000, "pps": 1875, "drops_ps": 0, "utilization": 0.76,
        "capacity_bps": 20_000_000, "ends": {"router": [15_000_000, 200_000]}}}


# -- panels -----------------------------------------------------------------------------


def test_a_node_value_is_its_own_entry_or_the_fallback():
    assert node_value({"*": 1, "n2": 2}, "n2") == 2
    assert node_value({"*": 1, "n2": 2}, "n1") == 1
    assert node_value("expo(1)", "n1") == "expo(1)"


def test_the_node_panel_has_groups_counters_and_outcomes(table):
    pipeline, session = n1_stats(table)
    for t, requests in ((99.0, 10), (100.0, 15)):
        pipeline.node_frame(session, Frame({"type": "STATS", "time": t, "interval": 1.0,
                                            "readings": [{"poller": "agent", "t": t, "series": [
            [{"agent": "HTTP", "group": "web"}, {"running": 1}],
            [{"agent": "HTTP", "group": "web", "counter": "requests"},
             {"counter_total": requests}]]}]}))
    jobs = SimpleNamespace(
        recent=lambda limit: [{"job": 9, "time": 98.0, "type": "COMMAND", "agent": "HTTP",
                               "group": "web", "command": "START", "sender": "alice"}],
        get=lambda job: {"outcomes": {"n1": {"status": "failed", "error": "no server"}}})
    groups = [{"agent": "HTTP", "group": "web", "run": "running", "start": 9,
               "vars": {"think": {"*": "expo(1)", "n1": "expo(2)"}}}]
    detail = node_detail(table.get("n1"), {"state": "up", "lag": 0}, groups, pipeline, jobs)
    (group,) = detail["groups"]
    assert group["vars"] == {"think": "expo(2)"} and group["run"] == "running"
    assert group["counters"] == {"requests": 15} and group["rates"] == {"requests": 5.0}
    (outcome,) = detail["outcomes"]
    assert (outcome["status"], outcome["error"], outcome["job"]) == ("failed", "no server", 9)
    assert detail["state"] == "up"


def test_the_link_plot_is_the_history_of_that_link_only():
    class History:
        def query(self, since, prefixes):
            assert prefixes == ["links/servers/"]
            return {"times": [1.0, 2.0], "series": {"links/servers/bps": [10.0, None],
                                                   "links/servers/drops_ps": [0.0, 1.0]}}

    plot = link_history(SimpleNamespace(history=History()), "servers", 600.0)
    assert (plot["times"], plot["bps"], plot["drops_ps"]) == ([1.0, 2.0], [10.0, None],
                                                             [0.0, 1.0])


# -- the log tails: the controller's side -----------------------------------------------


def tails_with(*names):
    clock = Clock()
    sessions = {}
    for name in names:
        session = FakeSession(name, "node")
        session.state["node"] = name
        sessions[name] = session
    return clock, sessions, Tails(clock, sessions, timeout=5.0)


def answered(d) -> list:
    got = []
    d.addCallback(got.append)
    return got


def test_a_tail_is_asked_of_the_node_and_its_answer_cut_to_size():
    clock, sessions, tails = tails_with("n1")
    got = answered(tails.ask("n1"))
    (frame,) = sessions["n1"].of_type("TAIL")
    assert frame.get("lines") and frame.get("bytes")
    tails.answered(sessions["n1"], Frame({"type": "TAIL", "id": frame.get("id"), "logs": [
        {"folder": "CBR-c", "file": "agent.log", "size": 10**6, "text": "x" * 100_000}]}))
    (answer,) = got
    assert len(answer["logs"][0]["text"]) <= 8192 and answer["logs"][0]["size"] == 10**6


def test_panels_opened_together_share_one_request():
    clock, sessions, tails = tails_with("n1")
    first, second = answered(tails.ask("n1")), answered(tails.ask("n1"))
    (frame,) = sessions["n1"].of_type("TAIL")
    tails.answered(sessions["n1"], Frame({"type": "TAIL", "id": frame.get("id"), "logs": []}))
    assert first == second == [{"node": "n1", "logs": []}]


def test_a_node_that_does_not_answer_is_said_so_after_the_timeout():
    clock, sessions, tails = tails_with("n1")
    got = answered(tails.ask("n1"))
    clock.advance(4.9)
    assert got == []
    clock.advance(0.2)
    assert "did not send its logs within 5 s" in got[0]["error"]
    assert clock.getDelayedCalls() == []


def test_an_answer_nobody_asked_for_or_from_another_node_is_dropped():
    clock, sessions, tails = tails_with("n1", "n2")
    got = answered(tails.ask("n1"))
    (frame,) = sessions["n1"].of_type("TAIL")
    tails.answered(sessions["n2"], Frame({"type": "TAIL", "id": frame.get("id"), "logs": []}))
    tails.answered(sessions["n1"], Frame({"type": "TAIL", "id": "tail-999", "logs": []}))
    assert got == [] and tails.stray == 2
    tails.stop()
    assert got[0]["error"] == "the controller is stopping" and clock.getDelayedCalls() == []


def test_a_node_that_is_not_connected_is_said_so_at_once():
    clock, sessions, tails = tails_with()
    (answer,) = answered(tails.ask("n1"))
    assert "not connected" in answer["error"]


# -- the log tails: the node's side -----------------------------------------------------


def test_the_node_reads_the_end_of_each_groups_logs_bounded(tmp_path):
    (tmp_path / "CBR-c1").mkdir()
    (tmp_path / "CBR-c1" / "agent.log").write_text("".join(f"line {i}\n" for i in range(10_000)))
    (tmp_path / "HTTP-web").mkdir()
    (tmp_path / "HTTP-web" / "clients.log").write_text("one\ntwo\n")
    (tmp_path / "files").mkdir()  # PUT files: no logs there
    logs = {log["folder"]: log for log in logtail.read_tails(tmp_path, 5, 1000)}
    assert sorted(logs) == ["CBR-c1", "HTTP-web"]
    assert logs["CBR-c1"]["text"].splitlines() == [f"line {i}" for i in range(9995, 10_000)]
    assert logs["CBR-c1"]["size"] > 60_000
    assert logs["HTTP-web"]["text"] == "one\ntwo" and logs["HTTP-web"]["file"] == "clients.log"


@pytest.mark.parametrize("asked, expected", [({}, (40, 8192)), ({"lines": 10**6, "bytes": 10**9},
                                                                (200, 16384)),
                                             ({"lines": "9", "bytes": -1}, (40, 8192))])
def test_the_node_keeps_a_tail_request_within_its_limits(asked, expected):
    assert logtail.limits(asked) == expected


def test_the_daemon_answers_tail_with_its_logs(tmp_path):
    (tmp_path / "NOOP-g").mkdir()
    (tmp_path / "NOOP-g" / "agent.log").write_text("started\n")
    sent = []
    daemon = SimpleNamespace(workdir=tmp_path, send=lambda header: sent.append(header),
                             files=SimpleNamespace(blocking=lambda f, *a: succeed(f(*a))))
    ControllerFrames(daemon).on_frame(None, Frame({"type": "TAIL", "id": "tail-1",
                                                   "lines": 10, "bytes": 100}))
    assert sent == [{"type": "TAIL", "id": "tail-1", "logs": [
        {"folder": "NOOP-g", "file": "agent.log", "size": 8, "text": "started"}]}]


# -- scripts' output --------------------------------------------------------------------


def test_a_scripts_output_goes_out_once_a_tick_and_bounded():
    clock = Clock()
    runs = RunLog(clock, per_tick=10, kept=6)
    run = SimpleNamespace(id="r1", experimenter="alice", started_at=0.0, code=None, signal=None)
    runs.run_started(run)
    runs.run_output(run, "stdout", "hello ")
    runs.run_output(run, "stdout", "world, and more")
    runs.run_output(run, "stderr", "oops")
    started, output = runs.take()
    assert started[0] == "run" and started[1]["event"] == "started"
    assert output == ("output", {"run": "r1", "pieces": [["stdout", "hello worl"]],
                                 "left_out": 15})  # 25 printed, 10 sent
    assert runs.take() == []
    assert runs.hello()[0]["tail"] == "reoops"  # a page that comes later: the last 6 of it
    run.code = 0
    runs.run_ended(run)
    (ended,) = runs.take()
    assert ended[1]["event"] == "ended" and ended[1]["code"] == 0


def test_the_script_runner_tells_its_listeners_what_a_script_prints(tmp_path):
    from backend.controller.scripts import Run, ScriptProcess, ScriptRunner

    heard = []

    class Listener:
        def run_output(self, run, stream, text):
            heard.append((run.id, stream, text))

    runner = ScriptRunner(Clock(), tmp_path, tmp_path / "s.sock", lambda *a: None,
                          lambda f, *a: succeed(f(*a)))
    runner.listeners.append(Listener())
    run = Run("r1", "alice", "t", tmp_path, None, 1, 0.0)
    process = ScriptProcess(runner, run)
    process.childDataReceived(1, b"hi\n")
    process.childDataReceived(2, "\u00e9".encode())
    process.log_file.close()
    assert heard == [("r1", "stdout", "hi\n"), ("r1", "stderr", "\u00e9")]
    assert Path(tmp_path / "output.log").read_bytes() == "hi\n\u00e9".encode()
