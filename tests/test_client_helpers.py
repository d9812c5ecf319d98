"""The client's shared helpers: FILE frames into local files (a GET's and a
run's), the one polling loop, and the waits built on it."""

from __future__ import annotations

import pytest

from seer.client import SeerError
from seer.client import polling
from seer.client.experiment import Experiment
from seer.client.files import ChunkWriter
from seer.cli.run import RunView
from seer.protocol.wire import Frame


def _file(name: str, offset: int, data: bytes, last: bool = False) -> Frame:
    return Frame({"type": "FILE", "name": name, "offset": offset, "last": last}, data)


def test_chunks_land_at_their_offsets_and_the_last_closes_the_file(tmp_path):
    path = tmp_path / "n1" / "capture.pcap"
    with ChunkWriter() as writer:
        writer.write(path, _file("capture.pcap", 0, b"abc"))
        writer.write(path, _file("capture.pcap", 3, b"def", last=True))
        assert writer._open == {}
    assert path.read_bytes() == b"abcdef"


def test_a_file_is_emptied_at_its_first_chunk(tmp_path):
    path = tmp_path / "out.txt"
    path.write_bytes(b"an older, longer content")
    with ChunkWriter() as writer:
        writer.write(path, _file("out.txt", 0, b"new", last=True))
    assert path.read_bytes() == b"new"


def test_a_chunk_past_the_start_continues_a_closed_file(tmp_path):
    path = tmp_path / "log.txt"
    with ChunkWriter() as writer:
        writer.write(path, _file("log.txt", 0, b"one ", last=True))
        writer.write(path, _file("log.txt", 4, b"two", last=True))
    assert path.read_bytes() == b"one two"


def test_close_closes_files_whose_last_chunk_never_came(tmp_path):
    writer = ChunkWriter()
    writer.write(tmp_path / "a", _file("a", 0, b"x"))
    handle = writer._open[tmp_path / "a"]
    writer.close()
    assert handle.closed and (tmp_path / "a").read_bytes() == b"x"


def test_a_runs_results_go_under_the_results_folder(tmp_path, capsys):
    with RunView(quiet=True, results=tmp_path / "res") as view:
        assert view.handle(_file("results/rates.csv", 0, b"1,2\n", last=True)) is None
        assert view.handle(_file("notes.txt", 0, b"n", last=True)) is None
        assert view.handle(Frame({"type": "EXIT", "code": 3})) == 3
    assert (tmp_path / "res" / "rates.csv").read_bytes() == b"1,2\n"
    assert (tmp_path / "res" / "notes.txt").read_bytes() == b"n"


class FakeTime:
    """monotonic() and sleep() of a clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(polling, "time", fake)
    return fake


def test_poll_returns_the_first_value_that_holds(clock):
    values = iter([1, 2, 3, 4])
    assert polling.poll(lambda: next(values), lambda v: v >= 3, timeout=10, interval=0.5) == (3, True)
    assert clock.sleeps == [0.5, 0.5]


def test_poll_gives_up_at_the_deadline_with_the_last_value(clock):
    reads = []

    def read() -> int:
        reads.append(clock.now)
        return len(reads)

    assert polling.poll(read, lambda v: False, timeout=2, interval=0.5) == (5, False)
    assert reads == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_poll_reads_once_even_with_no_time(clock):
    assert polling.poll(lambda: "x", lambda v: False, timeout=0) == ("x", False)
    assert clock.sleeps == []


class FakeGroup:
    agent_type, group = "CBR", "g"

    def __init__(self, readings: list[dict[str, float]]) -> None:
        self.readings = iter(readings)

    def counter(self, name: str, target=None) -> dict[str, float]:
        return next(self.readings)


def _experiment() -> Experiment:
    return object.__new__(Experiment)  # the waits need no connection


def test_wait_for_counter_returns_when_the_total_is_reached(clock):
    group = FakeGroup([{"n1": 1}, {"n1": 2, "n2": 3}])
    assert _experiment().wait_for_counter(group, "sent", total=5, timeout=10) == {"n1": 2, "n2": 3}


def test_wait_for_counter_names_the_nodes_short_of_each(clock):
    group = FakeGroup([{"n1": 5, "n2": 1}] * 10)
    with pytest.raises(SeerError, match=r"CBR g sent: not there: n2 \(1\) after 2 s"):
        _experiment().wait_for_counter(group, "sent", each=5, timeout=2)


def test_wait_until_raises_after_the_timeout(clock):
    with pytest.raises(SeerError, match="the flood did not hold within 1 s"):
        _experiment().wait_until(lambda: None, timeout=1, what="the flood")
    assert _experiment().wait_until(lambda: "yes", timeout=1) == "yes"


def test_the_e2e_helper_is_the_same_loop(clock):
    import e2e

    values = iter([0, 0, 7])
    assert e2e.eventually(lambda: next(values), lambda v: v == 7) == 7
    assert clock.sleeps == [0.5, 0.5]  # it slept on the client's loop, not a copy
