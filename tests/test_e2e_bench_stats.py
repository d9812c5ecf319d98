"""A tiny run of `python -m bench stats` (its simulated-controller and fan-out
parts), so the benchmark cannot rot.  Figures are not checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_bench_stats_prints_its_table_and_writes_json(tmp_path):
    out = tmp_path / "stats.json"
    run = subprocess.run([sys.executable, "-m", "bench", "stats", "--skip", "testbed",
                          "--nodes", "3", "--seconds", "2", "--rounds", "3", "--pairs", "2",
                          "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stats bytes/s per node" in run.stdout
    data = json.loads(out.read_text())
    assert data["controller"]["on"]["interfaces_aggregated"] == 3 * 4  # synthetic: 4 a node
    assert data["fanout"]["on"]["p50_ms"] > 0 and data["machine"]["cpus"]
    # Two runs each, in alternating order; the medians are what is compared.
    assert [len(data["fanout"]["runs"][k]) for k in ("on", "off")] == [2, 2]
    assert "stats on / off (median of 2)" in run.stdout
