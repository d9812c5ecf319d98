"""The stats pipeline end to end on the demo testbed: pollers in every node's
namespace, the controller's aggregates, a real Prometheus server scraping
/metrics through the testbed's relay, `seer stats` during a flood, the run
record of a `seer run`, agent logs with milliseconds.

Layers: SEER's interface counters count whole Ethernet frames (IP packet +
14 bytes, no preamble or FCS); the independent counter is an nftables rule
in the node's namespace, which counts IP packets -- its bytes plus 14 per
packet are compared with SEER's, like with like.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from seer.client import Experiment
from seer.testbed import build
from seer.testbed.netns import can_build, in_namespace
from seer.testbed.nftcount import Counter, bits_per_second

from conftest import EXAMPLE_TOPOLOGIES as EXAMPLES
from e2e import eventually, running_testbed

REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

PORT = 5001  # CBR's default sink port


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with running_testbed(tmp_path_factory.mktemp("testbeds"), EXAMPLES / "demo.toml",
                         f"stats{os.getpid() % 1000}") as testbed:
        yield testbed


@pytest.fixture
def exp(bed):
    c = bed["client"]
    with Experiment(c["controller"], c["certs"], c["identity"]) as e:
        yield e


def ns(bed, node: str) -> str:
    return build.node_ns(bed["name"], node)


def seer(bed, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, SEER_TESTBED=bed["name"])
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A real Prometheus server (Debian's), our child: 127.0.0.1 only, scraping
    only the controller's /metrics every second, its data in a fresh folder;
    stopped by its PID."""

    def __init__(self, folder: Path, metrics_url: str) -> None:
        target = urllib.parse.urlparse(metrics_url)
        self.port = free_port()
        config = folder / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "seer", "metrics_path": target.path,
                                "static_configs": [{"targets": [target.netloc]}]}]}))
        self.log = open(folder / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [shutil.which("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)

    def query(self, expression: str, at: float) -> list:
        return self.api("query", query=expression, time=f"{at:.3f}")["data"]["result"]

    def ready(self) -> bool:
        try:
            targets = self.api("targets")["data"]["activeTargets"]
        except OSError:
            return False
        return bool(targets) and targets[0]["health"] == "up"

    def stop(self) -> None:
        self.process.terminate()  # our own child, by its PID
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.mark.skipif(shutil.which("prometheus") is None,
                    reason="no prometheus (Debian package; `make setup` installs it)")
def test_prometheus_rate_of_a_5_mbit_cbr_is_within_3_percent_of_an_independent_counter(
        bed, exp, tmp_path):
    metrics = exp.status()["metrics"]
    assert metrics == bed["metrics"]  # the relay's port, reachable from this shell
    prometheus = Prometheus(tmp_path, metrics)
    counter = Counter(ns(bed, "client1"), PORT, hook="output", interface="eth1")
    try:
        assert eventually(prometheus.ready, bool, timeout=60), "Prometheus never scraped SEER"
        cbr = exp.agent("CBR", "prom")
        cbr.set(senders="client1", sinks="client2", rate="5mbit", size=1000, duration=20)
        cbr.start(target="client1,client2")
        # Steady: the sender has been sending for two seconds.
        eventually(counter.read, lambda r: r.packets > 2 * 625, timeout=20)
        readings = [counter.read()]
        series = 'seer_interface_transmit_bytes_total{node="client1",interface="eth1"}'

        def newest_sample() -> float:
            readings.append(counter.read())  # the independent counter, all along
            result = prometheus.query(f"timestamp({series})", time.time())
            return float(result[0]["value"][1]) if result else 0.0

        # The window ends on a sample SEER's poller took (its node's time): then
        # rate() needs no extrapolation at the end, where readings arrive late.
        end = eventually(newest_sample, lambda t: t >= readings[0].time + 11, timeout=40,
                         interval=0.1)
        (result,) = prometheus.query(f"rate({series}[10s])*8", end)
        seen = float(result["value"][1])
        first = min(readings, key=lambda r: abs(r.time - (end - 10)))
        last = min(readings, key=lambda r: abs(r.time - end))
        independent = bits_per_second(first, last)
        print(f"\nPrometheus rate {seen / 1e6:.4f} Mbit/s, nftables (IP + 14 B/packet) "
              f"{independent / 1e6:.4f} Mbit/s, difference {seen / independent - 1:+.2%}")
        assert result["metric"]["link"] == "lan1"
        assert abs(seen / independent - 1) < 0.03
        cbr.stop(target="client1,client2")
    finally:
        counter.remove()
        prometheus.stop()


def test_seer_stats_shows_the_bottleneck_filling_during_a_flood(bed, exp):
    flood = exp.agent("FLOODER", "stats")
    # 3000 x (1400 + 28) B = 34 Mbit/s at the 20 Mbit/s bottleneck, for 12 s at most.
    flood.set(targets="server1", type="udp", size=1400, rate=3000, duration=12,
              sources="198.18.2.128/25", target="attacker")
    flood.start(target="attacker")
    try:
        def servers() -> dict:
            return json.loads(seer(bed, "stats", "--json").stdout)["aggregate"]["links"]["servers"]

        # Full: the router's end sends at the shaped rate (link-layer bytes) --
        # waited for, since the first intervals of the flood may catch the
        # queue still filling; server1's ICMP answers to the spoofed sources
        # add to what the LAN carries.
        link = eventually(servers, lambda s: s.get("utilization", 0) > 0.9
                          and (s["drops_ps"] > 0 or s["backlog_bytes"] > 0)
                          and s["ends"]["router"]["tx_bps"] > 17e6, timeout=20)
        assert link["capacity_bps"] == 20e6
        assert 17e6 < link["ends"]["router"]["tx_bps"] < 21e6
        assert link["bps"] >= link["ends"]["router"]["tx_bps"]
        table = seer(bed, "stats").stdout
        line = next(row for row in table.splitlines() if row.startswith("servers"))
        assert re.search(r"\b(1[7-9]|2[0-3])\.\d\d Mbit/s", line), table
        assert re.search(r"\b(9\d|100)%", line), table
    finally:
        flood.stop(target="attacker")


def test_a_run_keeps_its_samples_and_command_log_and_agent_logs_have_milliseconds(
        bed, tmp_path):
    script = tmp_path / "short.py"
    script.write_text(
        "import time\n"
        "from seer.client import Experiment\n"
        "with Experiment() as exp:\n"
        "    cbr = exp.agent('CBR', 'rec')\n"
        "    cbr.set(senders='client1', sinks='client2', rate='1mbit', duration=3)\n"
        "    started = time.time()\n"
        "    cbr.start(target='client1,client2')\n"
        "    # An aggregate of this run's own traffic (an earlier test's may linger).\n"
        "    exp.wait_until(lambda: (a := exp.stats()['aggregate'])['time'] > started + 1\n"
        "                   and a['links']['lan1']['bps'] > 5e5, timeout=20, interval=0.2)\n"
        "    cbr.stop(target='client1,client2')\n")
    results = tmp_path / "results"
    run = seer(bed, "run", "--results", str(results), str(script), timeout=120)
    assert run.returncode == 0, run.stderr
    with open(results / "stats.csv") as f:
        samples = list(csv.DictReader(f))
    assert list(samples[0]) == ["time", "elapsed", "kind", "name", "field", "value"]
    lan1 = [float(r["value"]) for r in samples
            if (r["kind"], r["name"], r["field"]) == ("links", "lan1", "bps")]
    assert max(lan1) > 5e5
    with open(results / "commands.csv") as f:
        commands = list(csv.DictReader(f))
    assert [(c["command"], c["agent"], c["applied"]) for c in commands
            if c["type"] == "COMMAND"][:2] == [("START", "CBR", "2"), ("STOP", "CBR", "2")]
    assert all(c["sender"] == "experimenter" for c in commands)
    node = Path(bed["folder"]) / "nodes" / "client1"
    logs = sorted(node.rglob("agent.log"))
    assert logs, sorted(str(p.relative_to(node)) for p in node.rglob("*"))
    stamped = [line for log in logs for line in log.read_text().splitlines()
               if re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", line)]
    assert stamped, [log.read_text()[-300:] for log in logs]


NETLINK_PROBE = """
import json
from backend.node.pollers import netlink
from pyroute2 import IPRoute
sock = netlink.open_socket()
before = netlink.dump_blocking(sock, netlink.RTM_GETQDISC, 1)
with IPRoute() as ipr:
    theirs = []
    for m in ipr.get_qdiscs():
        stats = dict(m.get_attr("TCA_STATS2")["attrs"])
        options = m.get_attr("TCA_OPTIONS")
        parms = dict(options["attrs"]).get("TCA_TBF_PARMS") if options else None
        theirs.append({"ifindex": m["index"], "kind": m.get_attr("TCA_KIND"),
                       "bytes": stats["TCA_STATS_BASIC"]["bytes"],
                       "packets": stats["TCA_STATS_BASIC"]["packets"],
                       "drops": stats["TCA_STATS_QUEUE"]["drops"],
                       "backlog": stats["TCA_STATS_QUEUE"]["backlog"],
                       "rate": parms["rate"] if parms else None})
after = netlink.dump_blocking(sock, netlink.RTM_GETQDISC, 2)
print(json.dumps({"before": before, "theirs": theirs, "after": after}))
"""


@pytest.mark.parametrize("node", ["router", "server1"])
def test_the_daemons_netlink_parser_agrees_with_pyroute2_on_the_testbeds_qdiscs(bed, node):
    pytest.importorskip("pyroute2")
    run = subprocess.run(in_namespace(ns(bed, node), [sys.executable, "-c", NETLINK_PROBE]),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    dumps = json.loads(run.stdout)
    before = {q["ifindex"]: q for q in dumps["before"]}
    after = {q["ifindex"]: q for q in dumps["after"]}
    shaped = [t for t in dumps["theirs"] if t["kind"] == "tbf"]
    assert shaped, dumps["theirs"]
    for theirs in dumps["theirs"]:
        ours, later = before[theirs["ifindex"]], after[theirs["ifindex"]]
        assert ours["kind"] == theirs["kind"]
        for mine, key in (("sent_bytes_total", "bytes"), ("sent_packets_total", "packets"),
                          ("drops_total", "drops")):
            assert ours["values"][mine] <= theirs[key] <= later["values"][mine]
        if theirs["rate"] is not None:
            assert ours["values"]["rate_limit_bytes_per_second"] == theirs["rate"] == 2_500_000
