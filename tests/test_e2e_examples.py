"""The shipped example experiments, shortened, through `seer run` on the testbed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from e2e import running_testbed
from seer.testbed.netns import can_build

ROOT = Path(__file__).resolve().parent.parent
REASON = can_build()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    topology = ROOT / "examples/topologies/demo.toml"
    with running_testbed(tmp_path_factory.mktemp("testbeds"), topology,
                         f"ex{os.getpid() % 1000}") as testbed:
        yield testbed


def run_example(bed, name: str, *args: str, results: Path) -> str:
    env = dict(os.environ, SEER_TESTBED=bed["name"])
    done = subprocess.run([sys.executable, "-m", "seer", "run", "-q", "--results", str(results),
                           str(ROOT / "examples" / name), *args],
                          capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_flood_example_prints_success_rates_before_during_and_after(bed, tmp_path, capsys):
    out = run_example(bed, "ddos_web.py", "--phase", "4", "--rate", "8000", results=tmp_path)
    with capsys.disabled():
        print("\n" + out[out.index("the victim"):out.index("per node")].rstrip())
    rows = {m.group(1): m for m in re.finditer(
        r"^(before|during|after)\s+(\d+)\s+(\d+)\s+(\d+)%\s+([\d.]+)\s+([\d.]+)", out, re.M)}
    assert set(rows) == {"before", "during", "after"}
    assert int(rows["before"].group(2)) > 10 and int(rows["before"].group(4)) >= 95
    assert float(rows["during"].group(6)) > 10 * float(rows["before"].group(6))  # queueing
    assert "flood: asked 8000 packets/s, sent" in out
    assert list(tmp_path.rglob("capture-eth3.pcap"))
    # Its report (seer run draws it) shades the flood's phase on the bottleneck's plot.
    bottleneck = ET.parse(tmp_path / "report" / "link-servers.svg")
    texts = {"".join(e.itertext()).strip()
             for e in bottleneck.iter("{http://www.w3.org/2000/svg}text")}
    assert {"link servers: rate and drops", "before", "during", "after"} <= texts


def test_the_ping_matrix_example_fills_the_matrix(bed, tmp_path):
    out = run_example(bed, "ping_matrix.py", "--count", "3", "--interval", "0.05",
                      results=tmp_path)
    assert "6 nodes, 30 pairs" in out and "loss: none" in out and "?" not in out


def test_the_cbr_sweep_example_saturates_at_the_shaped_bandwidth(bed, tmp_path):
    out = run_example(bed, "cbr_sweep.py", "--bandwidth", "8mbit", "--rates", "4,12",
                      "--seconds", "2", results=tmp_path)
    ceiling = float(re.search(r"most received: ([\d.]+) Mbit/s", out).group(1))
    assert 7.0 <= ceiling <= 8.2, out


def test_the_readme_tour_runs_as_written(bed):
    import shlex

    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## A five-minute tour"):]
    block = tour[tour.index("```sh") + 5:tour.index("```", tour.index("```sh") + 5)]
    env = dict(os.environ, SEER_TESTBED=bed["name"])
    ran = 0
    for line in block.strip().splitlines():
        command, _, comment = line.partition("#")
        words = shlex.split(command)
        if words[:1] != ["seer"] or words[1:3] in (["testbed", "up"], ["testbed", "down"]):
            continue  # set-up and tear-down are the fixture's
        if words[1] == "watch":
            words.append("--once")
        if words[1] == "testbed" and words[2] == "exec":
            words[3:3] = ["--testbed", bed["name"]]
        if words[1] == "run":
            words[2:2] = ["-q"]
            words[3] = str(ROOT / words[3])
        done = subprocess.run([sys.executable, "-m", "seer", *words[1:]], capture_output=True,
                              text=True, env=env, timeout=120)
        expected_failure = "refused" in comment
        assert (done.returncode != 0) == expected_failure, f"{line}\n{done.stdout}{done.stderr}"
        ran += 1
    assert ran >= 9
