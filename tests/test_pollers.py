"""Node-side stats: the Poller loop on a fake clock, the shipped pollers'
parsing, the netlink codec, and the STATS frame the collector sends."""

from __future__ import annotations

import random
import struct
from collections import Counter

import pytest
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed

from backend.node.pollers import NodePollers, Poller, load_pollers
from backend.node.pollers import netlink, procfs
from backend.node.pollers.collector import FLUSH_DELAY
from backend.node.pollers.shipped import AgentPoller, ProcessPoller, QdiscPoller, group_counters
from seer.protocol.stats import parse_readings


class Counting(Poller):
    NAME = "counting"

    def __init__(self, *args, answer=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.answer = answer
        self.asked: list[float] = []

    def send_req(self):
        self.asked.append(self.clock.seconds())
        if self.answer:
            self.update(self.clock.seconds(), [[{}, {"n_total": len(self.asked)}]])


class View:
    name = "n1"

    def __init__(self, interfaces=(), groups=None, states=None, pids=None):
        self._interfaces = list(interfaces)
        self._groups = groups or {}
        self._states = states or {}
        self._pids = pids or {}

    def interfaces(self):
        return self._interfaces

    def groups(self):
        return self._groups

    def run_state(self, key):
        return self._states.get(key)

    def group_pids(self, key):
        return self._pids.get(key, [])


def test_the_first_reading_comes_after_a_random_part_of_the_interval_then_every_interval():
    clock = task.Clock()
    poller = Counting(View(), clock, interval=2.0, rng=random.Random(7))
    offset = random.Random(7).uniform(0, 2.0)
    poller.start()
    assert poller.running()
    clock.advance(offset - 0.001)
    assert poller.asked == []
    clock.advance(0.001)
    clock.pump([2.0] * 3)
    assert poller.asked == pytest.approx([offset, offset + 2, offset + 4, offset + 6])
    poller.stop()
    assert not poller.running()
    clock.advance(10)
    assert len(poller.asked) == 4


def test_nodes_started_together_do_not_read_in_step():
    clock = task.Clock()
    firsts = []
    for seed in range(20):
        poller = Counting(View(), clock, rng=random.Random(seed))
        started = clock.seconds()
        poller.start()
        clock.pump([0.001] * 1000)
        firsts.append(poller.asked[0] - started)
        poller.stop()
    assert len({round(f % 1.0, 3) for f in firsts}) > 15


def test_a_reading_that_does_not_come_is_counted_as_no_response():
    clock = task.Clock()
    poller = Counting(View(), clock, answer=False)
    poller.start(offset=0)
    clock.pump([1.0] * 4)
    assert len(poller.asked) == 5
    assert poller.no_responses == 4
    assert poller.status()["no_response"] == 4


def test_readings_stay_on_their_grid_when_the_reactor_was_held_up():
    clock = task.Clock()
    poller = Counting(View(), clock)
    poller.start(offset=0.5)
    clock.advance(0.5)
    clock.advance(3.7)  # a reactor held up for 3.7 s: one late reading, the rest skipped
    clock.advance(0.29)
    assert poller.asked == pytest.approx([0.5, 4.2])
    clock.advance(0.01)
    assert poller.asked == pytest.approx([0.5, 4.2, 4.5])


def test_a_poller_that_raises_is_counted_and_tried_again():
    class Broken(Poller):
        NAME = "broken"

        def send_req(self):
            raise RuntimeError("no")

    clock = task.Clock()
    poller = Broken(View(), clock)
    poller.start(offset=0)
    clock.pump([1.0] * 2)
    assert poller.errors == 3
    assert poller.no_responses == 0
    assert poller.running()


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth1: 5070000    5000    1    2    0     0          0         0 2028000    2000    3    4    0     0       0          0
"""


def test_proc_net_dev_is_read_as_counters_with_link_layer_bytes():
    counters = procfs.parse_net_dev(NET_DEV)
    assert counters["eth1"] == {
        "receive_bytes_total": 5070000, "receive_packets_total": 5000,
        "receive_errors_total": 1, "receive_drops_total": 2,
        "transmit_bytes_total": 2028000, "transmit_packets_total": 2000,
        "transmit_errors_total": 3, "transmit_drops_total": 4}
    assert set(counters) == {"lo", "eth1"}


def test_host_files_are_parsed():
    ticks = procfs.CLOCK_TICKS
    stat = f"cpu  {ticks} 0 {ticks} {8 * ticks} {ticks} 0 0 0 0 0\ncpu0 1 2 3 4\ncpu1 1 2 3 4\n"
    assert procfs.parse_cpu(stat) == {"cpu_busy_seconds_total": 2.0,
                                      "cpu_idle_seconds_total": 9.0, "cpus": 2}
    assert procfs.parse_meminfo("MemTotal: 100 kB\nMemFree: 1 kB\nMemAvailable: 40 kB\n") == \
        {"memory_total_bytes": 102400, "memory_available_bytes": 40960}
    assert procfs.parse_loadavg("0.5 0.25 0.1 1/100 42") == \
        {"load1": 0.5, "load5": 0.25, "load15": 0.1}
    cpu, parent = procfs.parse_pid_stat(
        f"42 (a (weird) name) S 7 42 42 0 -1 0 0 0 0 0 {ticks} {ticks} {ticks} 0 20 0 1")
    assert (cpu, parent) == (3.0, 7)


def _rtattr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _qdisc_message(ifindex, kind, seq, sent=(1000, 10), queue=(2, 3000, 5, 0, 7), rate=None):
    attrs = _rtattr(netlink.TCA_KIND, kind.encode() + b"\0")
    stats = _rtattr(netlink.TCA_STATS_BASIC, struct.pack("=QI", *sent) + b"\0" * 4)
    stats += _rtattr(netlink.TCA_STATS_QUEUE, struct.pack("=5I", *queue))
    attrs += _rtattr(netlink.TCA_STATS2 | 0x8000, stats)
    if rate is not None:
        options = _rtattr(netlink.TCA_TBF_PARMS, b"\0" * 8 + struct.pack("=I", rate) + b"\0" * 24)
        attrs += _rtattr(netlink.TCA_OPTIONS | 0x8000, options)
    body = struct.pack("=BBHiIII", 0, 0, 0, ifindex, 0x80010000, 0xFFFFFFFF, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), netlink.RTM_NEWQDISC, 2, seq, 0) + body


def test_netlink_qdisc_answers_are_parsed():
    data = _qdisc_message(3, "tbf", 9, rate=2_500_000) + _qdisc_message(4, "noqueue", 9)
    data += struct.pack("=IHHII", 20, netlink.NLMSG_DONE, 2, 9, 0) + b"\0" * 4
    dump = netlink.Dump(netlink.RTM_GETQDISC, 9)
    dump.feed(data)
    assert dump.done
    tbf, noqueue = dump.items
    assert (tbf["ifindex"], tbf["kind"], tbf["handle"], tbf["parent"]) == \
        (3, "tbf", "8001:", "root")
    assert tbf["values"] == {"sent_bytes_total": 1000, "sent_packets_total": 10,
                             "backlog_packets": 2, "backlog_bytes": 3000, "drops_total": 5,
                             "requeues_total": 0, "overlimits_total": 7,
                             "rate_limit_bytes_per_second": 2_500_000}
    assert noqueue["kind"] == "noqueue"


def test_netlink_answers_to_another_request_and_errors():
    dump = netlink.Dump(netlink.RTM_GETQDISC, 2)
    dump.feed(_qdisc_message(3, "tbf", 1))  # an abandoned request's late answer
    assert dump.items == [] and not dump.done
    dump.feed(struct.pack("=IHHII", 20, netlink.NLMSG_ERROR, 0, 2, 0) + struct.pack("=i", -1))
    assert dump.done and dump.error == 1
    assert netlink.attributes(b"\x03\x00") == {}  # truncated: nothing, no exception


class FakeReader:
    def __init__(self, qdiscs, links):
        self.answers = {netlink.RTM_GETQDISC: qdiscs, netlink.RTM_GETLINK: links}
        self.asked = Counter()

    def dump(self, kind):
        self.asked[kind] += 1
        answer = self.answers[kind]
        return answer if isinstance(answer, Deferred) else succeed(answer)


def _parsed(kind_ifindex):
    dump = netlink.Dump(netlink.RTM_GETQDISC, 1)
    for ifindex, kind in kind_ifindex:
        dump.feed(_qdisc_message(ifindex, kind, 1, rate=2_500_000 if kind == "tbf" else None))
    return dump.items


def test_the_qdisc_poller_reports_the_experiment_interfaces_queues_and_learns_names_once():
    clock = task.Clock()
    reader = FakeReader(_parsed([(3, "tbf"), (4, "noqueue"), (5, "tbf")]),
                        [(3, "eth1"), (4, "eth2"), (5, "ctl0")])
    poller = QdiscPoller(View(["eth1", "eth2"]), clock, reader=reader)
    got = []
    poller.on_reading = lambda p, t, r: got.append(r)
    poller.start(offset=0)
    clock.pump([1.0] * 2)
    assert len(got) == 3
    assert got[0] == [[{"interface": "eth1", "qdisc": "tbf", "handle": "8001:"},
                       _parsed([(3, "tbf")])[0]["values"]]]
    assert reader.asked[netlink.RTM_GETLINK] == 1
    assert poller.no_responses == 0


def test_a_netlink_answer_that_does_not_come_is_a_no_response():
    clock = task.Clock()
    reader = FakeReader(Deferred(), [])
    poller = QdiscPoller(View(["eth1"]), clock, reader=reader)
    poller.start(offset=0)
    clock.pump([1.0] * 3)
    assert poller.no_responses == 3


def test_the_netlink_reader_reads_this_namespace_without_blocking():
    # A real rtnetlink socket (read only): the host's qdiscs and links parse.
    sock = netlink.open_socket()
    try:
        links = netlink.dump_blocking(sock, netlink.RTM_GETLINK, 1)
        qdiscs = netlink.dump_blocking(sock, netlink.RTM_GETQDISC, 2)
    finally:
        sock.close()
    assert (1, "lo") in links
    assert all({"ifindex", "kind", "values"} <= set(q) for q in qdiscs)


class FakeAgent:
    def __init__(self):
        self.counters = Counter(requests=10, bytes=5000, flag=True)
        self.client_stats = {11: {"requests": 3, "running": 2, "elapsed": 9.0, "pid": 11},
                             12: {"requests": 4, "running": 1, "pid": 12}}


def test_group_counters_are_what_stats_returns_without_asking():
    assert group_counters(FakeAgent()) == {"bytes": 5000, "clients.requests": 7,
                                           "requests": 10}


def test_the_agent_poller_reports_run_state_and_counters_per_group():
    clock = task.Clock()
    key = ("HTTP", "web1")
    poller = AgentPoller(View(groups={key: FakeAgent()}, states={key: "running"}), clock)
    got = []
    poller.on_reading = lambda p, t, r: got.append(r)
    poller.send_req()
    labels = {"agent": "HTTP", "group": "web1"}
    assert got[0][0] == [labels, {"running": 1}]
    assert [dict(labels, counter="requests"), {"counter_total": 10}] in got[0]


def test_the_process_poller_keeps_the_cpu_of_processes_that_ended(tmp_path):
    ticks = procfs.CLOCK_TICKS

    def process(pid, cpu_ticks, children=(), parent=1):
        folder = tmp_path / str(pid)
        (folder / "task" / str(pid)).mkdir(parents=True)
        (folder / "stat").write_text(
            f"{pid} (x) S {parent} {pid} {pid} 0 -1 0 0 0 0 0 {cpu_ticks} 0 0 0 20 0 1")
        (folder / "statm").write_text("100 10 5 1 0 20 0")
        (folder / "task" / str(pid) / "children").write_text(" ".join(map(str, children)))

    process(100, 2 * ticks, children=[101])
    process(101, ticks, parent=100)
    key = ("CBR", "c1")
    view = View(groups={key: object()}, pids={key: [100]})
    poller = ProcessPoller(view, task.Clock(), proc=str(tmp_path))
    got = []
    poller.on_reading = lambda p, t, r: got.append(r[0][1])
    poller.send_req()
    assert got[-1]["cpu_seconds_total"] == 3.0
    assert got[-1]["running"] == 2
    assert got[-1]["resident_bytes"] == 20 * procfs.PAGE_SIZE
    view._pids = {key: []}  # it ended
    poller.send_req()
    assert got[-1] == {"cpu_seconds_total": 3.0, "resident_bytes": 0, "running": 0}


def test_one_stats_frame_per_interval_with_every_reading_and_the_pollers_counters():
    clock = task.Clock()
    sent = []
    plugins = load_pollers()
    plugins.add(Counting, "test")
    collector = NodePollers(View(), clock, lambda frame: sent.append(frame) or True,
                            names=["counting", "host"], plugins=plugins,
                            rng=random.Random(3))
    collector.startService()
    clock.pump([0.5] * 6)
    collector.stopService()
    assert len(sent) == 3
    frame = sent[0]
    assert frame["type"] == "STATS" and frame["seq"] == 1
    assert sorted(r["poller"] for r in frame["readings"]) == ["counting", "host"]
    assert {"interval", "readings", "no_response", "errors", "cpu_seconds_total"} <= \
        set(frame["pollers"]["counting"])
    parse_readings(frame["readings"])  # what the controller accepts
    assert not clock.getDelayedCalls()


class Later(Counting):
    """A poller whose answer comes when the test says (netlink's shape)."""

    NAME = "later"

    def send_req(self):
        self.asked.append(self.clock.seconds())
        self.answer = Deferred()
        self.answer.addCallback(lambda _: self.update(self.clock.seconds(),
                                                      [[{}, {"n_total": len(self.asked)}]]))


def _collector(clock, names, sent):
    plugins = load_pollers()
    plugins.add(Counting, "test")
    plugins.add(Later, "test")
    collector = NodePollers(View(), clock, lambda frame: sent.append(frame) or True,
                            names=names, plugins=plugins, rng=random.Random(5))
    collector.startService()
    clock.advance(collector.pollers[0].next_reading())  # the node's phase: the first tick
    return collector


def test_the_frame_leaves_at_once_when_every_poller_has_answered():
    clock = task.Clock()
    sent = []
    collector = _collector(clock, ["counting", "host"], sent)
    # At the tick's own time, not FLUSH_DELAY later; and one frame with both
    # readings: not sent from inside the first poller's tick.
    (frame,) = sent
    assert sorted(r["poller"] for r in frame["readings"]) == ["counting", "host"]
    clock.advance(FLUSH_DELAY)
    assert len(sent) == 1  # and no second, empty frame after FLUSH_DELAY
    collector.stopService()
    assert not clock.getDelayedCalls()


def test_the_frame_waits_for_an_answer_still_to_come_and_not_beyond_flush_delay():
    clock = task.Clock()
    sent = []
    collector = _collector(clock, ["counting", "later"], sent)
    later = next(p for p in collector.pollers if p.NAME == "later")
    clock.advance(0.01)
    assert sent == []  # the netlink-like answer has not come
    later.answer.callback(None)
    clock.advance(0)  # the reactor turn after the answer
    (frame,) = sent
    assert sorted(r["poller"] for r in frame["readings"]) == ["counting", "later"]
    clock.advance(1 - 0.01)  # the next interval: this time the answer never comes
    clock.advance(FLUSH_DELAY)
    assert [r["poller"] for r in sent[1]["readings"]] == ["counting"]
    collector.stopService()


def test_a_poller_due_within_flush_delay_still_shares_the_frame():
    clock = task.Clock()
    sent = []
    collector = _collector(clock, ["counting", "host"], sent)
    host = next(p for p in collector.pollers if p.NAME == "host")
    host.stop()
    host.start(offset=1 + FLUSH_DELAY / 2)  # next interval: host reads a moment after counting
    clock.advance(1)
    assert len(sent) == 1  # counting has read, but host is due within FLUSH_DELAY
    clock.advance(FLUSH_DELAY / 2)
    assert sorted(r["poller"] for r in sent[1]["readings"]) == ["counting", "host"]
    collector.stopService()


def test_readings_while_the_controller_is_unreachable_are_not_kept():
    clock = task.Clock()
    plugins = load_pollers()
    plugins.add(Counting, "test")
    sent = []
    connected = [False]

    def send(frame):
        if connected[0]:
            sent.append(frame)
        return connected[0]

    collector = NodePollers(View(), clock, send, names=["counting"], plugins=plugins)
    collector.startService()
    clock.pump([1.0] * 3)
    assert collector.unsent >= 2 and collector.frames == 0
    connected[0] = True
    clock.pump([1.0] * 1)
    collector.stopService()
    (frame,) = sent
    (reading,) = frame["readings"]
    (series,) = reading["series"]  # the latest only: nothing was kept while unreachable
    assert series[1]["n_total"] >= 3


def test_an_unknown_poller_name_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="no poller called nope .*interface"):  # ConfigError
        NodePollers(View(), task.Clock(), lambda f: True, names=["nope"])


def test_a_third_party_poller_from_a_folder_and_a_broken_one(tmp_path):
    (tmp_path / "temps.py").write_text(
        "from backend.node.pollers import Poller\n"
        "class Temps(Poller):\n"
        "    NAME = 'temperature'\n"
        "    def send_req(self):\n"
        "        self.update(self.clock.seconds(), [[{'sensor': 'cpu'}, {'celsius': 40}]])\n")
    (tmp_path / "broken.py").write_text("raise ImportError('missing thing')\n")
    plugins = load_pollers([str(tmp_path)])
    assert "temperature" in plugins.classes
    assert [e.source for e in plugins.errors] == [str(tmp_path / "broken.py")]
    assert "missing thing" in plugins.errors[0].error


def test_agent_log_lines_carry_the_time_to_the_millisecond(tmp_path):
    from backend.runtime.processes import ProcessManager

    clock = task.Clock()
    clock.advance(1_796_000_000.25)
    manager = ProcessManager(clock, tmp_path / "agent.log", "test/tag")
    manager.write_log("[curl 42] ended: exit code 0")
    manager.close()
    line = (tmp_path / "agent.log").read_text()
    import re
    import time as _time

    expected = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.localtime(1_796_000_000.25)) + ".250"
    assert re.match(re.escape(expected) + r"[+-]\d{4} \[curl 42\] ended", line), line


def test_a_poller_keeps_its_own_interval_when_it_is_longer_than_the_daemons():
    class Slow(Counting):
        NAME = "slow"
        INTERVAL = 5.0

    plugins = load_pollers()
    plugins.add(Counting, "test")
    plugins.add(Slow, "test")
    collector = NodePollers(View(), task.Clock(), lambda f: True, names=["counting", "slow"],
                            plugins=plugins, interval=2.0)
    assert {p.NAME: p.interval for p in collector.pollers} == {"counting": 2.0, "slow": 5.0}
