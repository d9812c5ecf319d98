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
