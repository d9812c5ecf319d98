"""Phases a script marks: Experiment.mark / end_phase / phase and the table they write."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from seer.client import experiment as experiment_module
from seer.client.phases import PHASE_COLUMNS, PhaseLog
from seer.report.record import load


def table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == PHASE_COLUMNS
        return list(reader)


def test_each_mark_ends_the_phase_before_it_and_the_table_is_written_at_once(tmp_path):
    log = PhaseLog(tmp_path / "results" / "phases.csv", started_at=1000.0)
    log.mark("before", 1002.0)
    assert table(tmp_path / "results" / "phases.csv") == [
        {"phase": "before", "start": "1002.0", "end": "", "start_elapsed": "2.0",
         "end_elapsed": ""}]
    log.mark("during", 1012.5)
    log.end(1020.0)
    rows = table(tmp_path / "results" / "phases.csv")
    assert [(r["phase"], r["start_elapsed"], r["end_elapsed"]) for r in rows] == [
        ("before", "2.0", "12.5"), ("during", "12.5", "20.0")]
    assert not list((tmp_path / "results").glob(".*partial"))  # replaced, not left half-written


@pytest.mark.parametrize("name", ["", "   ", None, "two\nlines"])
def test_a_phase_without_a_name_on_one_line_is_refused(tmp_path, name):
    log = PhaseLog(tmp_path / "p.csv", 0.0)
    with pytest.raises(ValueError, match="a phase needs a name"):
        log.mark(name, 1.0)
    assert not (tmp_path / "p.csv").exists()


def test_phases_marked_out_of_order_are_refused_and_say_why(tmp_path):
    log = PhaseLog(tmp_path / "p.csv", 0.0)
    log.mark("during", 10.0)
    with pytest.raises(ValueError, match="mark them in the order they begin"):
        log.mark("before", 5.0)
    log.end(20.0)
    with pytest.raises(ValueError, match="before phase 'during' ends"):
        log.mark("after", 15.0)
    assert [p.name for p in log.phases] == ["during"]
    unwritten = PhaseLog(None, 0.0)
    unwritten.mark("x", 5.0)
    with pytest.raises(ValueError, match="cannot end 1.000 s before it begins"):
        unwritten.end(4.0)


def test_closing_ends_the_open_phase_and_drops_phases_never_reached(tmp_path):
    log = PhaseLog(tmp_path / "p.csv", 0.0)
    log.mark("before", 1.0)
    log.mark("during", 10.0)
    log.mark("after", 40.0)  # scheduled ahead; the script dies at t = 25
    log.close(25.0)
    assert [(p.name, p.start, p.end) for p in log.phases] == [
        ("before", 1.0, 10.0), ("during", 10.0, 25.0)]
    assert [r["phase"] for r in table(tmp_path / "p.csv")] == ["before", "during"]


class FakeConnection:
    """Stands in for the controller connection: mark() sends nothing."""

    def __init__(self, *args, **kwargs) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_connection(monkeypatch):
    monkeypatch.setattr(experiment_module, "Connection", FakeConnection)


def test_experiment_marks_phases_into_results_by_default(tmp_path, monkeypatch, fake_connection):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEER_EXPERIMENT_START", "1000.0")
    with experiment_module.Experiment(teardown=False) as exp:
        exp.mark("before", at=exp.time(1))
        exp.mark("during", at=exp.time(4))
        with pytest.raises(ValueError):
            exp.mark("late", at=exp.time(2))
        exp.end_phase(at=exp.time(6))
        assert [(p.name, p.start, p.end) for p in exp.phases] == [
            ("before", 1001.0, 1004.0), ("during", 1004.0, 1006.0)]
    assert exp.connection.closed
    rows = table(tmp_path / "results" / "phases.csv")
    assert [(r["phase"], r["start_elapsed"], r["end_elapsed"]) for r in rows] == [
        ("before", "1.0", "4.0"), ("during", "4.0", "6.0")]


def test_a_phase_block_lasts_as_long_as_the_block_and_close_ends_the_last(
        tmp_path, fake_connection):
    path = tmp_path / "mine.csv"
    exp = experiment_module.Experiment(teardown=False, phases_file=path)
    with exp.phase("warm-up") as phase:
        assert phase.end is None
    assert phase.end is not None and phase.end >= phase.start
    exp.mark("steady")
    exp.close()
    assert [(r["phase"], bool(r["end"])) for r in table(path)] == [
        ("warm-up", True), ("steady", True)]


def test_phases_file_none_writes_nothing(tmp_path, monkeypatch, fake_connection):
    monkeypatch.chdir(tmp_path)
    with experiment_module.Experiment(teardown=False, phases_file=None) as exp:
        exp.mark("only in memory")
    assert [p.name for p in exp.phases] == ["only in memory"]
    assert not (tmp_path / "results").exists()


def test_a_phase_left_open_by_a_dead_script_is_read_as_ending_with_the_record(tmp_path):
    results = tmp_path / "results"
    log = PhaseLog(results / "phases.csv", 1000.0)
    log.mark("during", 1005.0)  # never ended: the script was killed
    with open(results / "stats.csv", "w") as f:
        f.write("time,elapsed,kind,name,field,value\n"
                "1001.0,1.0,links,lan,bps,5\n1009.0,9.0,links,lan,bps,5\n")
    (phase,) = load(results).phases
    assert (phase.name, phase.start, phase.end, phase.open) == ("during", 5.0, 9.0, True)
