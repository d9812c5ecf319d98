"""A tiny run of each benchmark, so bench/ cannot rot.  Times are not checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_launch_rate_benchmark_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "launch.json"
    run = subprocess.run([sys.executable, "-m", "bench", "launch-rate", "--count", "20",
                          "--client-nodes", "1", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "launches/s" in run.stdout
    data = json.loads(out.read_text())
    assert data["results"][0]["launched"] == 20 and data["machine"]["cpus"]


def run_bench(tmp_path, *args: str, timeout: float = 180) -> tuple[str, dict]:
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, "-m", "bench", *args, "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout, json.loads(out.read_text())


def test_fanout_benchmark_measures_real_and_simulated_nodes_against_the_floor(tmp_path):
    stdout, data = run_bench(tmp_path, "fanout", "--sizes", "3,6s", "--rounds", "5")
    assert "x floor" in stdout
    real, simulated = data["results"]
    assert (real["nodes"], real["simulated"]) == (3, False)
    assert (simulated["nodes"], simulated["simulated"]) == (6, True)
    for r in data["results"]:
        assert r["latency_ms"]["n"] == 5
        assert r["latency_ms"]["p50"] <= r["latency_ms"]["max"]
        assert r["floor_ms"]["n"] == 5
        load = r["machine_load"]  # what else the machine did meanwhile, in % of its CPUs
        assert 0 <= load["others_pct"] <= 100 and 0 <= load["steal_pct"] <= 100
    assert "others %" in stdout and "steal %" in stdout


def test_throughput_benchmark_collects_every_outcome(tmp_path):
    stdout, data = run_bench(tmp_path, "throughput", "--nodes", "3", "--seconds", "1",
                             "--window", "20")
    assert "commands/s" in stdout
    (r,) = data["results"]
    assert r["commands"] > 0 and r["failed_or_unconfirmed"] == 0
    assert 0 < r["datagrams_per_command"] <= 1.5


def test_loss_benchmark_delivers_everything_once_and_in_order(tmp_path):
    stdout, data = run_bench(tmp_path, "loss", "--nodes", "3", "--drops", "0.2",
                             "--rate", "0")
    assert "reorderings" in stdout
    (r,) = data["results"]
    assert r["nodes_complete"] == 3 and r["all_applied"]
    assert r["duplicates"] == 0 and r["reorderings"] == 0


def test_footprint_benchmark_reads_memory_cpu_and_keepalive(tmp_path):
    stdout, data = run_bench(tmp_path, "footprint", "--nodes", "2", "--seconds", "2",
                             "--commands", "20")
    assert "keep-alive" in stdout
    assert data["daemon_rss_mb"]["max"] >= data["daemon_private_mb"]["max"] > 0
    assert data["keepalive_bytes_per_s_per_node"] > 0


def test_signatures_benchmark_times_every_algorithm_with_seers_own_rsa(tmp_path):
    stdout, data = run_bench(tmp_path, "signatures", "--repeat", "20")
    assert "verify us" in stdout
    by_name = {r["algorithm"]: r for r in data["results"]}
    assert set(by_name) == {"Ed25519", "ECDSA P-256", "RSA-2048 PSS (SEER)"}
    assert by_name["RSA-2048 PSS (SEER)"]["signature_bytes"] == 256
    assert all(r["sign_us"] > 0 and r["verify_us"] > 0 for r in data["results"])


def test_faults_benchmark_fuzzes_a_daemon_and_the_controller_and_both_survive(tmp_path):
    stdout, data = run_bench(tmp_path, "faults", "--datagrams", "2000", "--rate", "2000",
                             "--connections", "50")
    assert "faults injected and survived" in stdout and "still serving" in stdout
    datagrams, connections = data["results"]
    assert datagrams["injected"] == 2000 and connections["injected"] == 50
    for r in data["results"]:
        assert r["still_serving"] and r["dispatched"] == 0
        assert r["rss_after"]["daemon"] > 0 and r["rss_after"]["controller"] > 0
    assert datagrams["counted"] + datagrams["kernel_dropped"] >= 2000
    assert connections["answered_without_a_valid_certificate"] == 0
    assert connections["pre_tls_failures"] == 40  # all but the experimenter's 10
    assert data["load"]["before"] and data["machine"]["cpus"]


def test_cli_benchmark_times_whole_seer_processes(tmp_path):
    stdout, data = run_bench(tmp_path, "cli", "--nodes", "2", "--runs", "2")
    assert "round trip to 2 daemons" in stdout
    assert set(data["results"]) == {"seer --help", "seer nodes",
                                    "seer command (round trip to 2 daemons)"}
    assert all(r["n"] == 2 and r["p50"] > 0 for r in data["results"].values())


@pytest.mark.parametrize("check", ["tag", "signature"])
def test_python_floor_answers_every_round_from_verifying_nodes(tmp_path, check):
    stdout, data = run_bench(tmp_path, "pyfloor", "--nodes", "3", "--rounds", "5",
                             "--check", check)
    assert f"the Python floor: verify ({check})" in stdout
    (r,) = data["results"]
    assert r["check"] == check and r["nodes"] == 3 and r["latency_ms"]["n"] == 5 and r["lost_rounds"] == 0
    # From /proc in clock ticks (10 ms): a run this short may show none.
    assert r["cpu_ms_per_node_per_command"] >= 0


def test_targets_put_the_newest_figure_of_each_benchmark_beside_its_target(tmp_path):
    def result(name: str, when: str, data: dict) -> None:
        (tmp_path / f"{name}-{when}.json").write_text(json.dumps(data))

    fanout_row = {"nodes": 100, "simulated": False, "latency_ms": {"p50": 30.0, "p99": 50.0},
                  "cpu_ms_per_command": {"per_node": 0.25, "controller": 9.0}}
    result("fanout", "20260101-000000", {"results": [dict(fanout_row, latency_ms={
        "p50": 99.0, "p99": 99.0})]})
    result("fanout", "20260102-000000", {"results": [fanout_row]})
    # Newer, but N=10 only and N=100 through workers: N=100 comes from the run before.
    result("fanout", "20260103-000000", {"results": [
        dict(fanout_row, nodes=10, cpu_ms_per_command={"per_node": 0.2, "controller": 1.0}),
        dict(fanout_row, isolate="all", latency_ms={"p50": 77.0, "p99": 77.0})]})
    result("throughput", "20260101-000000", {"results": [{"nodes": 10,
                                                          "commands_per_s": 3100.0}]})
    run = subprocess.run([sys.executable, "-m", "bench", "targets", "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = {line.strip().split("  ")[0]: line for line in run.stdout.splitlines()[3:]}
    assert "30 ms" in lines["fan-out N=100, p50"] and "MISSED" in lines["fan-out N=100, p50"]
    assert "50 ms" in lines["fan-out N=100, p99"] and " met " in lines["fan-out N=100, p99"]
    assert "0.25 ms" in lines["daemon CPU per command, N=100"]
    assert "met" in lines["throughput to 10 daemons"]
    assert "run python -m bench cli" in lines["`seer nodes`, p50"]
    assert "0.2 ms" in lines["daemon CPU per command, N=10"]
    assert "fanout-20260103" in lines["daemon CPU per command, N=10"]
    assert "fanout-20260102" in lines["fan-out N=100, p50"]
    assert "run python -m bench fanout" in lines["fan-out N=1,000 simulated, p50"]


@pytest.mark.parametrize("args, complaint", [
    (["fanout", "--sizes", "10,x"], "'x' is not a node count"),
    (["fanout", "--rounds", "0"], "'0' is not a positive whole number"),
    (["throughput", "--seconds", "-1"], "'-1' is not a number above 0"),
    (["loss", "--drops", "1.5"], "'1.5' is not a share from 0 to below 1"),
    (["loss", "--rate", "fast"], "'fast' is not a rate"),
    (["footprint", "--nodes", "0"], "'0' is not a positive whole number"),
    (["faults", "--datagrams", "0"], "'0' is not a positive whole number"),
    (["faults", "--rate", "1e9"], "'1e9' is not a rate above 0 and at most 50000 a second"),
    (["faults", "--connection-rate", "-3"], "'-3' is not a rate above 0 and at most 1000"),
])
def test_bench_refuses_bad_arguments_before_starting_anything(args, complaint):
    run = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and complaint in run.stderr, run.stderr


def test_bench_help_lists_every_benchmark_and_rejects_an_unknown_one():
    run = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    for name in ("cli", "faults", "fanout", "footprint", "launch-rate", "loss", "pyfloor",
                 "signatures", "targets", "throughput"):
        assert name in run.stdout
    run = subprocess.run([sys.executable, "-m", "bench", "nonesuch"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "invalid choice" in run.stderr
