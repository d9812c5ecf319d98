"""`seer report` on small synthetic run records: what is read, what is drawn,
what the page links, what a comparison overlays, what a wrong path says.

Plots are checked from their SVG (text kept as text, phases' parts named by
id), never by eye.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from seer.cli import main
from seer.cli.run import RunView
from seer.client.phases import PHASE_COLUMNS
from seer.protocol.stats import COMMAND_COLUMNS, SAMPLE_COLUMNS
from seer.report.record import IDLE_BPS, RecordError, load

pytest.importorskip("matplotlib")
from seer.report.build import make_comparison, make_report  # noqa: E402 (needs matplotlib)

T0 = 1_800_000_000.0
SVG = "{http://www.w3.org/2000/svg}"


def write_record(folder: Path, *, seconds: int = 20, phases=(("before", 0, 10), ("during", 10, 20)),
                 busy=("lan1", "servers"), idle=("lan2",), scale: float = 1.0,
                 samples_name: str = "stats.csv", commands_name: str = "commands.csv",
                 phases_name: str = "phases.csv") -> Path:
    """A run record like the controller's: every link's rate and drops each
    second, an HTTP group's counters, two commands, the phases."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(seconds):
        t = i + 0.5
        during = any(name == "during" and a <= t < b for name, a, b in phases)
        for link in busy:
            rows.append((T0 + t, t, "links", link, "bps", scale * (9e6 if during else 2e6)))
            rows.append((T0 + t, t, "links", link, "drops_ps", 300 if during else 0))
        for link in idle:
            rows.append((T0 + t, t, "links", link, "bps", IDLE_BPS / 4))  # ARP and the like
            rows.append((T0 + t, t, "links", link, "drops_ps", 0))
        rows += [(T0 + t, t, "groups", "HTTP/web", "counters.clients.requests", 10 * i),
                 (T0 + t, t, "groups", "HTTP/web", "rates.clients.requests", 10),
                 (T0 + t, t, "groups", "HTTP/web", "counters.clients.launched", 10 * i),
                 (T0 + t, t, "groups", "HTTP/web", "rates.clients.launched", 10),
                 (T0 + t, t, "groups", "LINK/shape", "running", 1),
                 (T0 + t, t, "nodes", "client1", "tx_bps", 2e6)]
    with open(folder / samples_name, "w", newline="") as f:
        csv.writer(f).writerows([SAMPLE_COLUMNS, *rows])
    with open(folder / commands_name, "w", newline="") as f:
        csv.writer(f).writerows([
            COMMAND_COLUMNS,
            (T0 + 0.2, 1, "experimenter", "COMMAND", "HTTP", "web", "START", "client1", 1, 1, 0,
             0, 0, ""),
            (T0 + 10.1, 2, "experimenter", "COMMAND", "FLOODER", "f", "START", "attacker", 1, 0,
             1, 0, 0, "<script>alert(1)</script>")])
    if phases:
        with open(folder / phases_name, "w", newline="") as f:
            csv.writer(f).writerows([PHASE_COLUMNS, *(
                (name, T0 + a, T0 + b, a, b) for name, a, b in phases)])
    return folder


def svg_texts(path: Path) -> list[str]:
    return ["".join(e.itertext()).strip() for e in ET.parse(path).iter(f"{SVG}text")]


def svg_ids(path: Path) -> set[str]:
    return {e.get("id") for e in ET.parse(path).iter() if e.get("id")}


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src"):
                self.targets.add(value)


def page_links(page: Path) -> set[str]:
    parser = Links()
    parser.feed(page.read_text())
    return parser.targets


# -- reading ----------------------------------------------------------------------------


def test_a_record_is_read_on_the_runs_own_clock(tmp_path):
    run = load(write_record(tmp_path / "results"))
    assert run.started == T0
    assert run.get("links", "lan1", "bps").times[:2] == [0.5, 1.5]
    assert [(p.name, p.start, p.end, p.open) for p in run.phases] == [
        ("before", 0.0, 10.0, False), ("during", 10.0, 20.0, False)]
    assert [(c.elapsed, c.what) for c in run.commands] == [
        (0.2, "START HTTP web"), (10.1, "START FLOODER f")]
    assert run.outcome_totals() == {"commands": 2, "applied": 1, "failed": 1, "skipped": 0,
                                    "unconfirmed": 0}


def test_rows_out_of_order_are_read_in_time_order(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "stats.csv").write_text(  # two records pasted together, the later first
        "time,elapsed,kind,name,field,value\n"
        f"{T0 + 3},3,links,lan1,bps,30\n{T0 + 1},1,links,lan1,bps,10\n"
        f"{T0 + 2},2,links,lan1,bps,20\n")
    series = load(results).get("links", "lan1", "bps")
    assert (series.times, series.values) == ([1.0, 2.0, 3.0], [10.0, 20.0, 30.0])


def test_a_link_below_the_idle_rate_carried_no_traffic(tmp_path):
    run = load(write_record(tmp_path / "results"))
    assert run.links() == ["lan1", "lan2", "servers"]
    assert run.carried_links() == ["lan1", "servers"]


def test_a_groups_main_counters_leave_process_bookkeeping_out_and_idle_groups_get_no_plot(
        tmp_path):
    run = load(write_record(tmp_path / "results"))
    assert run.main_counters("HTTP/web") == ["clients.requests"]
    assert run.counting_groups() == ["HTTP/web"]  # LINK/shape counted nothing


def test_a_run_folder_on_the_controller_and_a_stats_record_file_are_runs_too(tmp_path):
    write_record(tmp_path / "run-7" / "results")
    assert load(tmp_path / "run-7").label == "run-7"
    write_record(tmp_path / "rec", samples_name="run.csv", commands_name="run-commands.csv",
                 phases_name="run-phases.csv")
    run = load(tmp_path / "rec" / "run.csv")
    assert (run.label, len(run.commands), [p.name for p in run.phases]) == (
        "run", 2, ["before", "during"])


@pytest.mark.parametrize("make, says", [
    (lambda p: p / "nothing-here", "no run record at .*nothing-here: there is no such file"),
    (lambda p: p, "no run record in .*: it has no stats.csv"),
    (lambda p: (p / "other.csv").write_text("a,b\n1,2\n") and p / "other.csv",
     "other.csv is not a run record's samples .*: its columns are a, b"),
])
def test_a_wrong_path_says_what_is_wrong_and_what_to_give(tmp_path, make, says):
    with pytest.raises(RecordError, match=says):
        load(make(tmp_path))


# -- the report -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One synthetic run's report, shared: drawing is the slow part."""
    return make_report(write_record(tmp_path_factory.mktemp("run") / "results"))


def test_the_report_has_one_plot_per_link_that_carried_traffic_with_its_phases(report):
    assert report.folder == report.runs[0].samples_file.parent / "report"
    links = sorted(p.name for p in report.folder.glob("link-*.svg"))
    assert links == ["link-lan1.svg", "link-servers.svg"]  # lan2 was idle
    assert sorted(p.name for p in report.folder.glob("link-*.png")) == [
        "link-lan1.png", "link-servers.png"]
    for name in ("lan1", "servers"):
        svg = report.folder / f"link-{name}.svg"
        texts = svg_texts(svg)
        assert f"link {name}: rate and drops" in texts
        assert "before" in texts and "during" in texts
        # Shaded in both panels (rate, drops), named once.
        assert {"phase-shade-0-0", "phase-shade-0-1", "phase-shade-1-0", "phase-shade-1-1",
                "phase-label-0", "phase-label-1"} <= svg_ids(svg)
    group = svg_texts(report.folder / "group-HTTP-web.svg")
    assert "agent group HTTP/web" in group and "clients.requests: 190 in all" in group


def test_the_page_links_every_plot_and_summarises_the_run(report):
    made = {p.name for p in report.folder.iterdir() if p.suffix in (".png", ".svg")}
    assert len(made) == 2 * len(report.plots) == 2 * 4  # overview, lan1, servers, HTTP/web
    linked = page_links(report.page)
    assert made <= linked
    assert {"../stats.csv", "../commands.csv", "../phases.csv"} <= linked
    text = report.page.read_text()
    assert "2: nodes applied 1, failed 1, skipped 0, unconfirmed 0" in text
    assert re.search(r"<td>during</td><td class=\"n\">10.0</td><td class=\"n\">20.0</td>", text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "lan2" in text  # named among the idle links


def test_a_second_report_replaces_the_plots_of_the_first(tmp_path):
    results = write_record(tmp_path / "results", busy=("lan1", "servers"), idle=())
    make_report(results)
    write_record(results, busy=("lan1",), idle=("servers",))
    report = make_report(results)
    assert sorted(p.name for p in report.folder.glob("link-*.svg")) == ["link-lan1.svg"]


def test_a_record_without_phases_or_samples_still_makes_a_page(tmp_path):
    results = write_record(tmp_path / "results", seconds=0, phases=())
    report = make_report(results)
    assert report.plots == []
    text = report.page.read_text()
    assert "The script marked no phases" in text and "Nothing to plot" in text


def test_compare_overlays_two_runs_on_each_plot(tmp_path):
    first = write_record(tmp_path / "a" / "results")
    second = write_record(tmp_path / "b" / "results", scale=0.5,
                          phases=(("before", 0, 12), ("during", 12, 20)))
    report = make_comparison(first, second)
    assert report.folder == first / "report" / "compare-b"
    svg = report.folder / "link-servers.svg"
    texts = svg_texts(svg)
    assert "link servers: rate and drops -- a vs b" in texts
    # The legend is made from the lines drawn: each run has its own.
    assert {"rate (a)", "rate (b)", "drops (a)", "drops (b)"} <= set(texts)
    # The first run's phases shaded and named; the second's named at their starts.
    assert texts.count("before") == 2 and texts.count("during") == 2
    assert {"phase-shade-0-0", "phase-shade-0-1"} <= svg_ids(svg)
    made = {p.name for p in report.folder.iterdir() if p.suffix in (".png", ".svg")}
    assert made and made <= page_links(report.page)
    page = report.page.read_text()
    assert "SEER runs compared: a and b" in page


def test_two_runs_of_one_name_are_told_apart(tmp_path):
    first = write_record(tmp_path / "one" / "x" / "results")
    second = write_record(tmp_path / "two" / "x" / "results")
    make_comparison(first, second, tmp_path / "out")
    assert "link lan1: rate and drops -- x (1) vs x (2)" in svg_texts(
        tmp_path / "out" / "link-lan1.svg")


# -- the command ------------------------------------------------------------------------


def test_seer_report_of_a_missing_run_says_so_and_exits_2(tmp_path, capsys):
    code = main(["report", str(tmp_path / "no-such-run")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"seer report: no run record at {tmp_path / 'no-such-run'}" in err
    assert "Give the results folder of a `seer run`" in err


def test_seer_report_prints_the_page_and_compare_needs_two_runs(tmp_path, capsys):
    results = write_record(tmp_path / "results", busy=("servers",), idle=("lan1", "lan2"))
    assert main(["report", str(results)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == (f"{results / 'report' / 'index.html'} (2 plots; phases before, "
                           "during)")  # one link: no overview
    assert main(["report", "--compare", str(results)]) == 2
    assert "--compare needs two runs" in capsys.readouterr().err


def test_seer_report_plot_writes_one_picture(tmp_path, capsys):
    results = write_record(tmp_path / "results")
    picture = tmp_path / "img" / "demo-report.png"
    assert main(["report", str(results), "--plot", "links/servers", "--output",
                 str(picture)]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not picture.with_suffix(".svg").exists()
    assert main(["report", str(results), "--plot", "links/nowhere", "--output",
                 str(picture)]) == 2
    assert "the record has no link 'nowhere'; its plots are overview, links/lan1" in \
        capsys.readouterr().err


def test_seer_run_draws_the_report_only_once_the_record_has_come(tmp_path):
    class Frame:
        def __init__(self, type_, blob=b"", **header):
            self.type, self.blob, self.header = type_, blob, header

        def get(self, key):
            return self.header.get(key)

    view = RunView(quiet=True, results=tmp_path / "out")
    view.handle(Frame("FILE", b"time,", name="results/stats.csv", offset=0, last=False))
    assert not view.record_arrived
    view.handle(Frame("FILE", b"elapsed\n", name="results/stats.csv", offset=5, last=True))
    assert view.record_arrived and not view.ended
    assert view.handle(Frame("EXIT", code=0)) == 0 and view.ended
    view.close()
    assert (tmp_path / "out" / "stats.csv").read_text() == "time,elapsed\n"


def test_seer_run_starts_the_report_as_a_process_that_loads_matplotlib_not_itself(tmp_path):
    # The report seer run makes comes from `seer report` in a child process.
    results = write_record(tmp_path / "results")
    probe = ("import sys; from seer.cli.run import report_after_run; "
             f"report_after_run(__import__('pathlib').Path({str(results)!r}), False); "
             "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr
    assert f"[seer run: report in {results / 'report' / 'index.html'}" in done.stderr
    assert (results / "report" / "link-servers.svg").exists()
