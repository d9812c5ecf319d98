"""The client's side of stats: the tables `seer stats` and `seer watch` print,
the recorder `seer stats record` writes with, and the command line's errors."""

from __future__ import annotations

import csv
import json

from seer.cli import main
from seer.client.stats import Recorder, commands_path
from seer.protocol.wire import Frame
from seer.statsview import bits, render
from seer.watch import WatchState, render as watch_render

AGGREGATE = {
    "time": 0.0, "interval": 1.0,
    "links": {"servers": {"kind": "lan", "bps": 19.7e6, "pps": 1760, "drops_ps": 250,
                          "backlog_bytes": 60000, "utilization": 0.985, "stale_members": 0},
              "lan1": {"kind": "lan", "bps": 2e5, "pps": 20, "drops_ps": 0,
                       "backlog_bytes": 0, "stale_members": 1}},
    "nodes": {"router": {"state": "live", "rx_bps": 40e6, "tx_bps": 19.7e6, "cpu_percent": 35.0,
                         "pollers_cpu_percent": 0.21},
              "client9": {"state": "stale"}},
    "groups": {"HTTP/background": {"nodes": 4, "running": 4, "cpu_percent": 2.5,
                                   "counters": {"clients.requests": 1200, "bytes": 9e6},
                                   "rates": {"clients.requests": 12.0}}},
}


def test_the_stats_table_shows_links_nodes_and_groups_in_80_columns():
    lines = render(AGGREGATE)
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "servers           lan    19.70 Mbit/s      1.8k      250   60.0kB    98%" in text
    assert "lan1" in text and "(stale)" in text
    assert "router        live     40.00 Mbit/s  19.70 Mbit/s     35.0%    0.21%" in text
    assert "client9       stale" in text
    assert "HTTP/background" in text and "clients.requests=1.2k (12/s) bytes=9.0M" in text
    assert bits(999) == "999 bit/s" and bits(None) == "-"


def test_watch_shows_the_same_aggregates_and_the_commands_and_prints_json():
    state = WatchState()
    state.aggregate = AGGREGATE
    state.commands = [{"time": 0, "sender": "alice", "command": "START", "agent": "HTTP",
                       "group": "background", "nodes": 4, "counts": {"applied": 4}}]
    text = "\n".join(watch_render(state, now=0))
    assert "servers" in text and "HTTP/background" in text
    assert "alice: START HTTP background -> 4 node(s): applied 4" in text
    assert json.loads(json.dumps(state.to_json()))["aggregate"]["links"]["servers"]["bps"] == 19.7e6


def test_the_recorder_writes_the_run_record_tables(tmp_path):
    path = tmp_path / "run.csv"
    with Recorder(path, started=-5.0) as recorder:
        recorder.take(Frame({"type": "AGGREGATE", "aggregate": AGGREGATE}))
        recorder.take(Frame({"type": "COMMAND_LOG", "entry": {
            "time": 1.0, "serial": 3, "sender": "alice", "type": "COMMAND", "agent": "HTTP",
            "group": "background", "command": "START", "target": ["client1", "client2"],
            "nodes": 2, "counts": {"applied": 1, "failed": 1}, "first_error": "boom"}}))
        recorder.take(Frame({"type": "REPORT", "event": "x"}))
    with open(path) as f:
        samples = list(csv.DictReader(f))
    assert {"time": "0.0", "elapsed": "5.0", "kind": "links", "name": "servers",
            "field": "bps", "value": "19700000.0"} in samples
    with open(commands_path(path)) as f:
        (command,) = list(csv.DictReader(f))
    assert command["target"] == "client1 client2"
    assert (command["applied"], command["failed"], command["first_error"]) == ("1", "1", "boom")


def test_stats_command_line_mistakes_are_usage_errors(capsys):
    assert main(["stats", "record", "--controller", "127.0.0.1:1"]) == 2
    assert "needs one FILE" in capsys.readouterr().err
    assert main(["stats", "recrd", "x.csv", "--controller", "127.0.0.1:1"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_seer_stats_stays_light(tmp_path, certs_dir):
    # Like every client command (tests/test_client_light.py): no Twisted, no
    # pyOpenSSL, no x509, and no prometheus-client in a `seer stats` process.
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = ("import sys\nfrom seer.cli import main\n"
             "code = main(sys.argv[1:])\n"
             "heavy = ('twisted', 'OpenSSL', 'cryptography.x509', 'prometheus_client')\n"
             "print(code, sorted(m for m in heavy if m in sys.modules))\n")
    flags = ["--controller", f"127.0.0.1:{port}", "--certs", str(certs_dir),
             "--identity", "alice"]
    for argv in (["stats", *flags], ["stats", "--watch", *flags],
                 ["stats", "record", str(tmp_path / "r.csv"), *flags]):
        run = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path)
        assert run.stdout.strip() == "3 []", (argv, run.stdout, run.stderr)
