"""The helpers the shipped agents and their tools share (agents/_common.py,
agents/tools/common.py), on fake time and a fake reactor: no process, no
socket, no real wait."""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from agents._common import own_address
from agents.cbr import Cbr
from agents.flooder import Flooder
from agents.tools import dnsserver, httpserver
from agents.tools.common import GIVE_UP_CATCHING_UP, pace, server_main
from backend.agent import AgentContext


class FakeTime:
    """perf_counter and sleep for pace(): every reading of the clock costs
    ``tick`` seconds (as a real loop's turn does), sleep() moves it on."""

    def __init__(self, tick: float = 1e-6) -> None:
        self.now = 0.0
        self.tick = tick

    def clock(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def paced(interval, duration, send=lambda n: None, time=None, **options):
    time = time or FakeTime()
    return pace(interval, duration, send, clock=time.clock, sleep=time.sleep, **options)


def test_pace_holds_the_rate_for_the_duration():
    run = paced(0.001, 2.0)
    assert 1999 <= run.sent <= 2001 and run.errors == 0
    assert run.seconds == pytest.approx(2.0, abs=0.002)


def test_pace_hands_each_send_the_number_sent_so_far():
    numbers = []
    paced(0.01, 0.1, numbers.append)
    assert numbers == list(range(len(numbers))) and len(numbers) >= 10


def test_pace_stops_after_count_successful_sends_and_counts_errors_apart():
    calls = []

    def flaky(n):
        calls.append(n)
        if len(calls) % 3 == 0:
            raise OSError("no buffer space")

    run = paced(0.001, 10.0, flaky, count=10)
    assert run.sent == 10 and run.errors == 4  # every third of 14 calls failed
    assert run.seconds < 0.02  # it stopped at the count, not at the duration


def test_pace_catches_up_a_short_stall_in_bursts():
    time = FakeTime()
    bursts = []

    def stall_once(n):
        if n == 100:
            time.now += 0.05  # 50 packets late
        bursts.append(time.now)

    run = paced(0.001, 1.0, stall_once, time=time, burst=10)
    assert 999 <= run.sent <= 1001
    # The 50 late packets left in bursts of at most 10 at the same instant.
    same_instant = max(bursts.count(t) for t in set(bursts))
    assert 2 <= same_instant <= 10


def test_pace_does_not_catch_up_a_long_stall():
    time = FakeTime()
    stall = GIVE_UP_CATCHING_UP + 0.3

    def stall_once(n):
        if n == 100:
            time.now += stall

    run = paced(0.001, 2.0, stall_once, time=time, burst=10)
    # One burst goes out before the loop sees how late it is; then it paces
    # on from there, and the stall's packets are never sent.
    lost = round(stall * 1000)
    assert 2000 - lost <= run.sent <= 2000 - lost + 10 + 2


class FakeServerReactor:
    """Records the ports a tool server opens; run() returns at once."""

    def __init__(self) -> None:
        self.tcp: list[tuple[int, str]] = []
        self.udp: list[tuple[int, str]] = []
        self.ran = False

    def listenTCP(self, port, factory, interface=""):
        self.tcp.append((port, interface))

    def listenUDP(self, port, protocol, interface=""):
        self.udp.append((port, interface))

    def run(self):
        self.ran = True


def test_a_tool_server_listens_says_so_and_runs(capsys):
    reactor = FakeServerReactor()
    assert server_main(["198.18.10.2", "8080"], "usage", (), httpserver.start, reactor) == 0
    assert reactor.tcp == [(8080, "198.18.10.2")] and reactor.ran
    assert json.loads(capsys.readouterr().out) == {"listening": "198.18.10.2:8080"}


def test_the_dns_server_says_what_it_serves(tmp_path, capsys):
    records = tmp_path / "zone.json"
    records.write_text(json.dumps({"client1": "198.18.1.2", "www": "198.18.10.2"}))
    reactor = FakeServerReactor()
    argv = ["198.18.10.2", "53", "exp.test", str(records)]
    assert server_main(argv, "usage", ("zone", "records"), dnsserver.start, reactor) == 0
    assert reactor.udp == reactor.tcp == [(53, "198.18.10.2")]
    assert json.loads(capsys.readouterr().out) == {
        "listening": "198.18.10.2:53", "zone": "exp.test", "names": 2}


@pytest.mark.parametrize("argv", [[], ["198.18.10.2"], ["198.18.10.2", "http"],
                                  ["198.18.10.2", "80", "extra"]])
def test_a_tool_server_given_wrong_arguments_prints_its_usage(argv, capsys):
    reactor = FakeServerReactor()
    assert server_main(argv, "USAGE TEXT", (), httpserver.start, reactor) == 2
    assert not reactor.ran and not reactor.tcp
    assert "USAGE TEXT" in capsys.readouterr().err


def attached(cls, addresses=None):
    reports: list[tuple[str, dict]] = []
    agent = cls()
    agent.attach(AgentContext(node="n1", agent_type=cls.AGENT_TYPE, group="g", reactor=Clock(),
                              report=lambda event, data: reports.append((event, data)),
                              node_info={"addresses": addresses or []}))
    return agent, reports


def test_own_address_is_the_first_experiment_address_or_loopback():
    assert own_address(attached(Cbr, ["198.18.1.2", "198.18.3.2"])[0]) == "198.18.1.2"
    assert own_address(attached(Cbr)[0]) == "127.0.0.1"


def test_cbr_results_are_reported_and_in_stats_by_kind():
    cbr, reports = attached(Cbr)
    sent = {"packets": 375, "achieved_bps": 999999.0, "requested_bps": 1e6}
    assert cbr.tool_line(1, json.dumps({"cbr_sent": sent}).encode()) is True
    assert reports == [("cbr_sent", sent)]
    assert cbr.handleSTATS()["cbr_sent"] == sent


def test_flooder_results_are_in_stats_under_floods_by_target():
    flooder, reports = attached(Flooder)
    done = {"target": "198.18.10.2", "packets": 3000, "achieved_pps": 1000.0}
    flooder.tool_line(1, json.dumps({"flood_done": done}).encode())
    stats = flooder.handleSTATS()
    assert stats["floods"] == {"198.18.10.2": done} and "flood_done" not in stats
    assert stats["counters"]["packets"] == 3000 and reports == [("flood_done", done)]


@pytest.mark.parametrize("fd, line", [(2, b'{"cbr_sent": {}}'), (1, b"{not json"),
                                      (1, b'{"a": {}, "b": {}}'), (1, b"plain words")])
def test_lines_that_are_not_results_go_to_the_log(fd, line):
    cbr, reports = attached(Cbr)
    assert cbr.tool_line(fd, line) is False
    assert reports == [] and cbr.results == {}
