"""The shipped agents on the namespace testbed: real traffic, checked on the wire."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from e2e import eventually, running_testbed
from procfs import tagged
from seer.client import CommandFailed, Experiment, RequestRefused
from seer.testbed import build
from seer.testbed.netns import can_build, in_namespace

from test_topology import EXAMPLES

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

SERVER = "198.18.10.2"  # server1 in examples/topologies/demo.toml
SPOOFED = "198.18.2.128/25"  # on the attacker's LAN, owned by no node


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with running_testbed(tmp_path_factory.mktemp("testbeds"), EXAMPLES / "demo.toml",
                         f"agents{os.getpid() % 1000}") as testbed:
        yield testbed


@pytest.fixture
def exp(bed):
    c = bed["client"]
    with Experiment(c["controller"], c["certs"], c["identity"]) as e:
        yield e


def on(bed, node: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(in_namespace(build.node_ns(bed["name"], node), list(argv)),
                          capture_output=True, text=True, timeout=timeout)


def stats(group, node: str) -> dict:
    return group.command("STATS", target=node).outcomes[node].result


def reports_of(exp, group, wanted: set[tuple[str, str]],
               timeout: float) -> dict[tuple[str, str], dict]:
    """The data of the reports ``(node, event)`` in ``wanted`` from ``group``,
    once all have come (call ``exp.subscribe()`` before the START).

    A generator reports when its bounded run is over: waiting for that
    report, not a fixed time, is what makes its numbers final.
    """
    seen: dict[tuple[str, str], dict] = {}
    for frame in exp.events(timeout=timeout):
        if frame.type != "REPORT" or frame.get("agent") != group.agent_type \
                or frame.get("group") != group.group:
            continue
        key = (frame.get("node"), frame.get("event"))
        if key in wanted:
            seen[key] = frame.get("data")
            if set(seen) == wanted:
                return seen
    raise AssertionError(f"{group.agent_type} {group.group}: no {sorted(wanted - set(seen))} "
                         f"within {timeout:g} s")


def client_counters_once(group, node: str, enough) -> dict:
    """The node's client counters once ``enough(counters)`` holds (or after 20 s).

    Polled, not slept for: clients start after their warm-up and STATS lags
    by up to a second, so a fixed sleep is flaky on a loaded machine.
    """
    return eventually(lambda: stats(group, node).get("clients") or {}, enough,
                      timeout=20, interval=0.25)


def nothing_left(bed, agent: str, group: str) -> None:
    for node, pid in bed["pids"].items():
        if node in ("controller", "relay"):
            continue
        tag = f"{node}/{pid}/{agent}/{group}"
        for _ in range(50):
            if not tagged(tag):
                break
            time.sleep(0.1)
        assert tagged(tag) == [], f"{agent} {group} left processes on {node}"


def test_http_serves_the_right_bytes_and_counts_requests(bed, exp):
    web = exp.agent("HTTP", "web")
    web.set(servers="server1", clients="client1 client2", think="minmax(0.1,0.3)",
            sizes="pareto(1.4,5000,200000)")
    web.start(target="server1,client1,client2")
    curl = on(bed, "client3", "curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
              f"http://{SERVER}:8080/123457")
    assert curl.stdout == "123457", curl.stderr
    clients = client_counters_once(
        web, "client1", lambda c: c.get("requests", 0) >= 3 and c.get("bytes", 0) >= 15000)
    server = stats(web, "server1")["counters"]
    web.stop(target="server1,client1,client2")
    assert clients.get("requests", 0) >= 3, clients
    assert clients["bytes"] >= 3 * 5000 and not clients.get("errors"), clients
    assert server["served_requests"] >= clients["requests"] + 1
    nothing_left(bed, "HTTP", "web")


def test_ftp_lets_a_real_client_log_in_and_fetch(bed, exp):
    ftp = exp.agent("FTP", "ftp")
    ftp.set(servers="server1", clients="client1", think="constant(0.3)", sizes="constant(20000)",
            warmup=0)
    ftp.start(target="server1")  # the server first: then clients need no warm-up
    ftp.start(target="client1")
    fetched = on(bed, "client3", "curl", "-sS", "--user", "seer:seer", "-o", "/dev/null",
                 "-w", "%{size_download}", f"ftp://{SERVER}/54321")
    refused = on(bed, "client3", "curl", "-sS", "--user", "seer:wrong", "-o", "/dev/null",
                 f"ftp://{SERVER}/54321")
    listing = on(bed, "client3", "curl", "-sS", "--user", "seer:seer", f"ftp://{SERVER}/")
    clients = client_counters_once(
        ftp, "client1", lambda c: c.get("transfers", 0) >= 2 and c.get("bytes", 0) >= 40000)
    ftp.stop(target="server1,client1")
    assert fetched.stdout == "54321", fetched.stderr
    assert refused.returncode != 0 and "530" in refused.stderr
    assert "100000" in listing.stdout
    assert clients["transfers"] >= 2 and clients["bytes"] >= 2 * 20000
    nothing_left(bed, "FTP", "ftp")


def test_dns_answers_dig_and_clients_resolve(bed, exp):
    dns = exp.agent("DNS", "dns")
    dns.set(servers="server1", clients="client2", think="constant(0.1)", zone="exp.test",
            warmup=0)
    dns.start(target="server1")
    dns.start(target="client2")
    dig = on(bed, "client3", "dig", f"@{SERVER}", "+short", "client1.exp.test", "A")
    www = on(bed, "client3", "dig", f"@{SERVER}", "+short", "www.exp.test", "A")
    clients = client_counters_once(dns, "client2", lambda c: c.get("lookups", 0) >= 5)
    dns.stop(target="server1,client2")
    assert dig.stdout.strip() == "198.18.1.2"  # client1's address
    assert www.stdout.strip() == SERVER  # server1's label
    assert clients["lookups"] >= 5 and clients["answered"] == clients["lookups"]
    nothing_left(bed, "DNS", "dns")


def test_ping_reports_rtt_and_loss_per_target(bed, exp):
    ping = exp.agent("PING", "pings")
    ping.set(targets="server1 client3", interval=0.05, count=20)
    exp.subscribe()
    ping.start(target="client1")
    reports = {}
    for frame in exp.events(timeout=15):
        if frame.type == "REPORT" and frame.get("event") == "ping_done":
            reports[frame.get("data")["target"]] = frame.get("data")
            if len(reports) == 2:
                break
    assert set(reports) == {"server1", "client3"}
    for result in reports.values():
        assert result["sent"] == 20 and result["received"] == 20 and result["loss"] == 0
        assert 0 < result["rtt_min"] <= result["rtt_avg"] <= result["rtt_max"] < 50
    assert stats(ping, "client1")["targets"]["server1"]["received"] == 20
    nothing_left(bed, "PING", "pings")


def test_targets_outside_the_experiment_are_refused_unless_allowed(bed, exp):
    ping = exp.agent("PING", "outside")
    ping.set(targets="198.18.99.1", count=2, interval=0.2)
    with pytest.raises(CommandFailed) as e:
        ping.start(target="client1")
    assert "198.18.99.1 is outside the experiment's own addresses" in \
        e.value.result.outcomes["client1"].error
    ping.set(allow_external="198.18.99.0/24")
    assert ping.start(target="client1").ok  # allowed; it has no route, nothing leaves
    flood = exp.agent("FLOODER", "outside")
    flood.set(targets="198.18.99.1", rate=10, duration=0.5)
    with pytest.raises(CommandFailed, match="outside the experiment"):
        flood.start(target="attacker")
    flood.set(targets="server1", sources="198.19.5.0/24")  # the control network's range
    with pytest.raises(CommandFailed, match="not on the experiment's subnets"):
        flood.start(target="attacker")


def test_cbr_reports_achieved_rate_loss_and_jitter(bed, exp, capsys):
    exp.subscribe()
    rows = []
    for rate in ("1mbit", "5mbit", "10mbit"):
        group = exp.agent("CBR", f"cbr{rate}")
        group.set(senders="client1", sinks="server1", rate=rate, size=1000, duration=3,
                  idle=1.0)
        group.start(target="client1,server1")
        # 0.5 s warm-up, 3 s sending, 1 s idle before the sink reports.
        done = reports_of(exp, group, {("client1", "cbr_sent"), ("server1", "cbr_received")},
                          timeout=3 + 0.5 + 1.0 + 15)
        sent, received = done["client1", "cbr_sent"], done["server1", "cbr_received"]
        assert stats(group, "client1")["cbr_sent"] == sent  # STATS keeps the latest result
        group.stop(target="client1,server1")
        rows.append((rate, sent["requested_bps"], sent["achieved_bps"], received["received_bps"],
                     received["loss"], received["jitter_ms"]))
        assert abs(sent["achieved_bps"] - sent["requested_bps"]) / sent["requested_bps"] < 0.05
        assert abs(received["received_bps"] - sent["achieved_bps"]) / sent["achieved_bps"] < 0.1
        assert received["loss"] < 0.02 and received["jitter_ms"] < 50
        nothing_left(bed, "CBR", f"cbr{rate}")
    with capsys.disabled():
        print("\nCBR client1 -> server1 (20 Mbit/s bottleneck), 3 s each:")
        print("requested      achieved(send)  received      loss    jitter ms")
        for r in rows:
            print(f"{r[1]:>12.0f}  {r[2]:>14.0f}  {r[3]:>12.0f}  {r[4]:>6.2%}  {r[5]:>8.3f}")


def capture_on(exp, node: str, group: str, pcap_filter: str):
    cap = exp.agent("TCPDUMP", group)
    cap.set(interfaces="eth1", filter=pcap_filter, snaplen=64)
    cap.start(target=node)
    return cap


def packets_in(bed, exp, node: str, name: str, tmp) -> list[str]:
    result = exp.get(name, target=node, into=tmp)
    read = subprocess.run(["tcpdump", "-n", "-r", result.outcomes[node].result["path"]],
                          capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    return read.stdout.splitlines()


@pytest.mark.parametrize("kind, bpf", [("udp", "udp"), ("syn", "tcp[tcpflags] == tcp-syn"),
                                       ("icmp", "icmp[icmptype] == icmp-echo")])
def test_flooder_types_are_seen_on_the_victims_link_from_pool_sources(bed, exp, tmp_path, kind, bpf):
    exp.subscribe()
    cap = capture_on(exp, "server1", f"victim-{kind}", f"src net {SPOOFED} and {bpf}")
    flood = exp.agent("FLOODER", f"f-{kind}")
    flood.set(targets="server1", type=kind, rate=500, duration=2, sources=SPOOFED, seed=7)
    flood.start(target="attacker")
    reports_of(exp, flood, {("attacker", "flood_done")}, timeout=2 + 15)
    cap.stop(target="server1")
    lines = packets_in(bed, exp, "server1", f"TCPDUMP-victim-{kind}/capture-eth1.pcap", tmp_path)
    sources = {re.search(r"IP (\d+\.\d+\.\d+\.\d+)", line).group(1) for line in lines}
    assert 900 <= len(lines) <= 1100, len(lines)
    assert len(sources) > 50 and all(s.startswith("198.18.2.") and int(s.rsplit(".", 1)[1]) > 128
                                     for s in sources)
    nothing_left(bed, "FLOODER", f"f-{kind}")


def test_flood_rates_measured_on_the_victims_link(bed, exp, tmp_path, capsys):
    exp.subscribe()
    rows = []
    for rate in (1000, 4000, 10000):
        cap = capture_on(exp, "server1", f"rate{rate}", f"udp and src net {SPOOFED}")
        flood = exp.agent("FLOODER", f"rate{rate}")
        flood.set(targets="server1", type="udp", rate=rate, duration=3, sources=SPOOFED)
        flood.start(target="attacker")
        sent = reports_of(exp, flood, {("attacker", "flood_done")}, timeout=3 + 15)[
            "attacker", "flood_done"]
        cap.stop(target="server1")
        assert stats(flood, "attacker")["floods"][SERVER] == sent
        seen = len(packets_in(bed, exp, "server1", f"TCPDUMP-rate{rate}/capture-eth1.pcap",
                              tmp_path))
        rows.append((rate, sent["achieved_pps"], seen / 3))
        assert abs(sent["achieved_pps"] - rate) / rate < 0.05
        assert abs(seen / 3 - rate) / rate < 0.1, (rate, seen)
    with capsys.disabled():
        print("\nFLOODER attacker -> server1, UDP, spoofed sources, 3 s each:")
        print("requested pps  achieved (sender)  seen on the victim's link")
        for r in rows:
            print(f"{r[0]:>13}  {r[1]:>17.0f}  {r[2]:>25.0f}")


def test_tcpdump_capture_comes_back_and_opens_in_tcpdump(bed, exp, tmp_path):
    cap = exp.agent("TCPDUMP", "icmp")
    cap.set(interfaces="eth3", filter="icmp")
    result = cap.start(target="router")
    assert result.outcomes["router"].result["capturing"] == ["eth3"]
    on(bed, "client1", "ping", "-c", "5", "-i", "0.05", SERVER)
    stopped = cap.stop(target="router").outcomes["router"].result
    assert stopped["captured"]["eth3"] == 10  # 5 requests, 5 replies
    lines = packets_in(bed, exp, "router", "TCPDUMP-icmp/capture-eth3.pcap", tmp_path)
    assert len(lines) == 10 and all("ICMP echo" in line for line in lines)
    bad = exp.agent("TCPDUMP", "bad")
    bad.set(filter="this is not a filter (")
    with pytest.raises(CommandFailed, match="can't parse filter expression"):
        bad.start(target="router")
    nothing_left(bed, "TCPDUMP", "icmp")


def test_link_shapes_throughput_and_goes_down_and_up(bed, exp, capsys):
    exp.subscribe()
    link = exp.agent("LINK", "shape")
    link.set(interface="eth1", bandwidth="4mbit")
    link.start(target="client2")
    cbr = exp.agent("CBR", "through-link")
    cbr.set(senders="client2", sinks="client3", rate="10mbit", size=1200, duration=3, idle=1.0,
            port=5010)
    cbr.start(target="client2,client3")
    received = reports_of(exp, cbr, {("client3", "cbr_received")}, timeout=3 + 1 + 1 + 15)[
        "client3", "cbr_received"]
    cbr.stop(target="client2,client3")
    link.stop(target="client2")
    with capsys.disabled():
        print(f"\nLINK 4mbit on client2's eth1, CBR 10 Mbit/s through it: received "
              f"{received['received_bps'] / 1e6:.2f} Mbit/s")
    assert abs(received["received_bps"] - 4e6) / 4e6 < 0.15
    assert link.command("DOWN", target="client2").ok
    assert on(bed, "client1", "ping", "-c", "1", "-W", "1", "198.18.1.3").returncode != 0
    assert link.command("UP", target="client2").ok
    # Up means carrier too (LOWER_UP), a moment after `ip link set up` returns.
    state = eventually(lambda: on(bed, "client2", "ip", "-o", "link", "show", "eth1").stdout,
                       lambda out: "LOWER_UP" in out, timeout=10, interval=0.1)
    assert "LOWER_UP" in state, state
    assert on(bed, "client1", "ping", "-c", "1", "-W", "2", "198.18.1.3").returncode == 0
    with pytest.raises(CommandFailed, match="netem"):
        exp.agent("LINK", "delay").set({"interface": "eth1", "delay": "20ms"})
        exp.agent("LINK", "delay").start(target="client2")
    guard = exp.agent("LINK", "guard")
    guard.set(interface="ctl0")
    with pytest.raises(CommandFailed, match="not an experiment interface"):
        guard.start(target="client2")
    with pytest.raises(RequestRefused, match="bandwidth"):
        link.set(bandwidth="fast")


def test_every_agent_is_in_the_catalogue_with_typed_variables(exp):
    agents = exp.agents()["agents"]
    for name in ("HTTP", "FTP", "DNS", "PING", "CBR", "FLOODER", "TCPDUMP", "LINK"):
        assert name in agents and len(agents[name]["nodes"]) == 6
        assert "STATS" in agents[name]["commands"]
    flooder = {v["name"]: v for v in agents["FLOODER"]["variables"]}
    assert flooder["rate"]["maximum"] == 1_000_000 and agents["FLOODER"]["menu"] == "Attack"
