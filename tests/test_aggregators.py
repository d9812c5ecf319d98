"""Controller-side stats on fakes: STATS frames in, rates per interface, link,
node and group out; history; the STATS request and subscriptions; the
command log; /metrics through prometheus-client; run records."""

from __future__ import annotations

import csv
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.controller.aggregators.history import History
from backend.controller.aggregators.links import LinkMap
from backend.controller.metrics import registry_for
from prometheus_client.exposition import generate_latest
from seer.protocol.stats import ReadingsError, parse_readings, rows
from seer.protocol.wire import Frame

LAN = [{"name": "eth1", "addresses": ["198.18.1.1/24"], "mac": ""}]


def iface(name, address):
    return [{"name": name, "addresses": [address], "mac": ""}]


def stats(t, *, tx=0, rx=0, packets=0, qdisc=None, groups=(), interface="eth1", seq=1):
    readings = [{"poller": "interface", "t": t, "series": [
        [{"interface": interface}, {"transmit_bytes_total": tx, "receive_bytes_total": rx,
                                    "transmit_packets_total": packets,
                                    "receive_packets_total": 0}]]}]
    if qdisc is not None:
        readings.append({"poller": "qdisc", "t": t, "series": [
            [{"interface": interface, "qdisc": "tbf", "handle": "1:"}, qdisc]]})
    if groups:
        readings.append({"poller": "agent", "t": t, "series": list(groups)})
    return Frame({"type": "STATS", "time": t, "seq": seq, "interval": 1.0,
                  "readings": readings,
                  "pollers": {"interface": {"interval": 1.0, "readings": seq,
                                            "no_response": 2, "errors": 0,
                                            "cpu_seconds_total": 0.001 * seq}}})


def pipeline(lab):
    return lab.c.stats.pipeline


def test_counters_become_rates_per_interface_link_and_node(lab):
    a = lab.register("n1", interfaces=iface("eth1", "198.18.1.1/24"))
    b = lab.register("n2", interfaces=iface("eth1", "198.18.1.2/24"))
    now = lab.reactor.seconds()
    lab.c.frameReceived(a, stats(now, tx=0, packets=0))
    lab.c.frameReceived(b, stats(now, rx=0))
    lab.c.frameReceived(a, stats(now + 2, tx=1_250_000, packets=1000, seq=2))
    lab.c.frameReceived(b, stats(now + 2, rx=1_250_000, seq=2))
    lab.reactor.advance(1.0)
    aggregate = pipeline(lab).latest
    assert aggregate["interfaces"]["n1/eth1"]["tx_bps"] == pytest.approx(5e6)
    assert aggregate["interfaces"]["n1/eth1"]["tx_pps"] == pytest.approx(500)
    assert aggregate["interfaces"]["n2/eth1"]["rx_bps"] == pytest.approx(5e6)
    link = aggregate["links"]["198.18.1.0/24"]
    assert link["bps"] == pytest.approx(5e6) and link["kind"] == "lan"
    assert set(link["ends"]) == {"n1", "n2"}
    assert aggregate["nodes"]["n1"]["state"] == "live"
    assert aggregate["nodes"]["n1"]["tx_bps"] == pytest.approx(5e6)
    assert aggregate["nodes"]["n1"]["no_response"] == 2


def test_rates_use_the_nodes_time_stamps_not_arrival(lab):
    a = lab.register("n1", interfaces=LAN)
    t = lab.reactor.seconds()
    lab.c.frameReceived(a, stats(t - 5, tx=0))
    lab.c.frameReceived(a, stats(t - 4.5, tx=1000, seq=2))  # both arrive now
    lab.reactor.advance(1.0)
    assert pipeline(lab).latest["interfaces"]["n1/eth1"]["tx_bps"] == pytest.approx(16000)


def test_a_counter_that_goes_down_restarted_and_has_no_rate(lab):
    a = lab.register("n1", interfaces=LAN)
    t = lab.reactor.seconds()
    lab.c.frameReceived(a, stats(t, tx=10_000))
    lab.c.frameReceived(a, stats(t + 1, tx=10, seq=2))
    lab.reactor.advance(1.0)
    assert pipeline(lab).latest["interfaces"]["n1/eth1"]["tx_bps"] == 0.0


def test_links_are_named_by_the_setting_and_shaped_queues_fill_them(lab):
    lab.c.stats.pipeline.link_names = {"198.18.10.0/24": "servers"}
    r = lab.register("n1", interfaces=iface("eth3", "198.18.10.1/24"))
    lab.register("n2", interfaces=iface("eth1", "198.18.10.2/24"))
    t = lab.reactor.seconds()
    queue = {"sent_bytes_total": 0, "drops_total": 0, "backlog_bytes": 0,
             "rate_limit_bytes_per_second": 2_500_000}
    lab.c.frameReceived(r, stats(t, interface="eth3", qdisc=queue))
    full = dict(queue, sent_bytes_total=2_400_000, drops_total=300, backlog_bytes=60_000)
    lab.c.frameReceived(r, stats(t + 1, tx=2_400_000, interface="eth3", qdisc=full, seq=2))
    lab.reactor.advance(1.0)
    link = pipeline(lab).latest["links"]["servers"]
    assert link["capacity_bps"] == 20e6
    assert link["utilization"] == pytest.approx(0.96)
    assert link["drops_ps"] == pytest.approx(300)
    assert link["backlog_bytes"] == 60_000
    assert link["stale_members"] == 1  # n2 never sent readings


def test_the_testbeds_readings_of_a_lan_bridge_count_for_that_link(lab):
    lab.c.stats.pipeline.link_names = {"198.18.10.0/24": "servers"}
    lab.register("n1", interfaces=iface("eth3", "198.18.10.1/24"))
    tool = lab.client()
    t = lab.reactor.seconds()
    for i, (sent, drops) in enumerate(((0, 0), (2_000_000, 50))):
        lab.request(tool, {"type": "READINGS", "id": i, "source": "switch", "time": t + i,
                           "readings": [{"poller": "qdisc", "t": t + i, "series": [
                               [{"link": "servers", "interface": "l2p1", "toward": "n1"},
                                {"sent_bytes_total": sent, "drops_total": drops,
                                 "backlog_bytes": 1000,
                                 "rate_limit_bytes_per_second": 2_500_000}]]}]})
    assert [f.type for f in tool.take()] == ["REPLY", "REPLY"]
    lab.reactor.advance(1.0)
    link = pipeline(lab).latest["links"]["servers"]
    assert link["drops_ps"] == pytest.approx(50)
    assert link["utilization"] == pytest.approx(0.8)
    lab.request(tool, {"type": "READINGS", "id": 9, "source": "n1", "readings": []})
    assert "not a node's" in tool.take()[0].get("error")


def test_a_node_whose_readings_stop_is_stale_and_adds_nothing(lab):
    a = lab.register("n1", interfaces=LAN)
    t = lab.reactor.seconds()
    lab.c.frameReceived(a, stats(t, tx=0))
    lab.c.frameReceived(a, stats(t + 1, tx=1000, seq=2))
    lab.reactor.advance(1.0)
    assert pipeline(lab).latest["nodes"]["n1"]["state"] == "live"
    lab.reactor.pump([1.0] * 4)
    aggregate = pipeline(lab).latest
    assert aggregate["nodes"]["n1"]["state"] == "stale"
    assert "n1/eth1" not in aggregate.get("interfaces", {})
    lab.c.sessionClosed(a, None)
    lab.reactor.advance(1.0)
    assert pipeline(lab).latest["nodes"]["n1"]["state"] == "down"


def test_group_counters_and_rates_add_up_over_nodes(lab):
    labels = {"agent": "HTTP", "group": "web1"}
    t = lab.reactor.seconds()
    for name in ("n1", "n2"):
        s = lab.register(name, interfaces=LAN)
        for i, count in enumerate((10, 30)):
            lab.c.frameReceived(s, stats(t + i, seq=i + 1, groups=[
                [labels, {"running": 1}], [dict(labels, counter="requests"),
                                           {"counter_total": count}]]))
    lab.reactor.advance(1.0)
    group = pipeline(lab).latest["groups"]["HTTP/web1"]
    assert group["nodes"] == 2 and group["running"] == 2
    assert group["counters"] == {"requests": 60}
    assert group["rates"] == {"requests": pytest.approx(40)}


@pytest.mark.parametrize("readings, error", [
    ("x", "readings must be a list"),
    ([{"poller": "a b", "t": 1, "series": []}], "poller must be a name"),
    ([{"poller": "p", "t": "now", "series": []}], "t must be a time"),
    ([{"poller": "p", "t": 1, "series": [[{"l": 1}, {}]]}], "label 'l'"),
    ([{"poller": "p", "t": 1, "series": [[{}, {"v": "1"}]]}], "value 'v'"),
    ([{"poller": "p", "t": 1, "series": [[{}, {}]] * 2001}], "at most 2000"),
])
def test_malformed_readings_are_refused_whole(readings, error):
    with pytest.raises(ReadingsError, match=error):
        parse_readings(readings)


def test_a_bad_stats_frame_changes_nothing(lab):
    a = lab.register("n1", interfaces=LAN)
    lab.c.frameReceived(a, Frame({"type": "STATS", "readings": "garbage"}))
    assert pipeline(lab).counters["bad_stats_frames"] == 1
    assert "n1" not in pipeline(lab).store.sources


def test_the_stats_request_answers_the_aggregate_history_and_commands(lab):
    a = lab.register("n1", interfaces=LAN)
    alice = lab.client()
    t = lab.reactor.seconds()
    for i in range(5):
        lab.c.frameReceived(a, stats(t + i, tx=1000 * i, seq=i + 1))
        lab.reactor.advance(1.0)
    lab.request(alice, {"type": "SET", "id": 1, "agent": "NOOP", "group": "g",
                        "vars": {"note": "x"}, "target": "n1", "timeout": 1})
    lab.reactor.advance(2.0)
    alice.take()
    lab.request(alice, {"type": "STATS", "id": 2, "history": 60, "prefixes": ["links/"],
                        "commands": 5})
    (reply,) = alice.take()
    assert reply.get("aggregate")["nodes"]["n1"]["state"] in ("live", "stale")
    history = reply.get("history")
    assert len(history["times"]) >= 6
    assert set(history["series"]) >= {"links/198.18.1.0/24/bps"}
    assert all(k.startswith("links/") for k in history["series"])
    (entry,) = reply.get("commands")
    assert (entry["type"], entry["group"], entry["sender"]) == ("SET", "g", "alice")
    assert entry["counts"] == {"unconfirmed": 1} and entry["nodes"] == 1
    lab.request(alice, {"type": "STATS", "id": 3, "history": -1})
    assert "history must be" in alice.take()[0].get("error")


def test_a_subscriber_gets_every_aggregate_and_every_finished_command(lab):
    lab.register("n1", interfaces=LAN)
    watcher = lab.client()
    lab.request(watcher, {"type": "STATS", "id": 1, "subscribe": True})
    watcher.take()
    lab.reactor.pump([1.0] * 3)
    assert [f.type for f in watcher.take()].count("AGGREGATE") == 3
    lab.c.sessionClosed(watcher, None)
    lab.reactor.advance(1.0)
    assert pipeline(lab).subscribers == set()


def test_the_history_is_a_bounded_ring_and_forgets_what_is_gone():
    history = History(length=3)
    for t in range(5):
        entities = {"a": {"bps": t}} if t < 2 else {"b": {"bps": t, "nested": {"x": 1}}}
        history.add({"time": float(t), "links": entities})
    answer = history.query()
    assert answer["times"] == [2.0, 3.0, 4.0]
    assert answer["series"]["links/b/bps"] == [2, 3, 4]
    assert answer["series"]["links/b/nested.x"] == [1, 1, 1]
    assert "links/a/bps" not in answer["series"]  # NaN for a whole window: dropped
    assert history.query(since=3.0)["times"] == [4.0]


def test_link_matching_from_addresses_and_subnets():
    links = LinkMap.build([
        ("r1", iface("eth1", "198.18.50.1/30") + iface("eth2", "198.18.1.1/24")),
        ("r2", iface("eth1", "198.18.50.2/30")),
        ("a", iface("eth1", "198.18.1.2/24")),
        ("b", iface("eth1", "198.18.1.3/24")),
        ("c", [{"name": "eth9", "addresses": ["bad"]}]),
    ], {"198.18.1.0/24": "left"})
    assert links.links["198.18.50.0/30"].kind == "link"
    assert links.links["left"].members == [("a", "eth1"), ("b", "eth1"), ("r1", "eth2")]
    assert links.link_of("r2", "eth1") == "198.18.50.0/30"
    assert links.link_of("c", "eth9") is None


def test_metrics_are_prometheus_counters_with_node_link_labels_and_node_time(lab):
    lab.c.stats.pipeline.link_names = {"198.18.1.0/24": "lan1"}
    a = lab.register("n1", interfaces=LAN)
    t = 1_800_000_000.5
    lab.c.frameReceived(a, stats(t, tx=4242))
    text = generate_latest(registry_for(lab.c.stats.pipeline)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    tx = families["seer_interface_transmit_bytes"]
    assert tx.type == "counter"
    (sample,) = tx.samples
    assert sample.name == "seer_interface_transmit_bytes_total"
    assert sample.labels == {"node": "n1", "interface": "eth1", "link": "lan1"}
    assert sample.value == 4242 and sample.timestamp == pytest.approx(t)
    assert families["seer_node_up"].samples[0].value == 1
    assert "seer_poller_no_response" in families


def test_the_metrics_are_bounded(lab):
    a = lab.register("n1", interfaces=LAN)
    lab.c.frameReceived(a, stats(lab.reactor.seconds(), tx=1))
    text = generate_latest(registry_for(lab.c.stats.pipeline, max_series=2)).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name.startswith("seer_interface")]
    assert len(samples) == 2
    assert "seer_metrics_dropped_series" in text


def test_run_record_rows_are_one_number_a_row():
    aggregate = {"time": 105.0, "interval": 1.0, "links": {"lan1": {
        "bps": 5e6, "kind": "lan", "ends": {"n1": {"tx_bps": 5e6}}, "utilization": math.nan}}}
    assert list(rows(aggregate, started=100.0)) == [
        (105.0, 5.0, "links", "lan1", "bps", 5e6)]


def test_a_runs_record_is_written_while_it_runs_and_closed_before_its_results_go(lab, tmp_path):
    class Run:
        id = "r1"
        folder = tmp_path / "r1"
        started_at = lab.reactor.seconds()

    records = lab.c.stats.records
    a = lab.register("n1", interfaces=LAN)
    records.run_started(Run)
    t = lab.reactor.seconds()
    lab.c.frameReceived(a, stats(t, tx=0))
    lab.c.frameReceived(a, stats(t + 1, tx=1000, seq=2))
    lab.reactor.pump([1.0] * 2)
    alice = lab.client()
    lab.request(alice, {"type": "SET", "id": 1, "agent": "NOOP", "group": "g",
                        "vars": {"note": "x"}, "target": "n1", "timeout": 1})
    lab.c.frameReceived(a, Frame({"type": "REPORT", "ack": 1,
                                  "outcomes": [[1, "applied", None, None]]}))
    records.run_ended(Run)
    with open(tmp_path / "r1" / "results" / "stats.csv") as f:
        samples = list(csv.DictReader(f))
    assert {"time", "elapsed", "kind", "name", "field", "value"} == set(samples[0])
    assert any(r["kind"] == "interfaces" and r["field"] == "tx_bps" and float(r["value"]) == 8000
               for r in samples)
    with open(tmp_path / "r1" / "results" / "commands.csv") as f:
        (command,) = list(csv.DictReader(f))
    assert (command["type"], command["sender"], command["applied"], command["nodes"]) == \
        ("SET", "alice", "1", "1")
