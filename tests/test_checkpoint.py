"""Checkpoints chosen by sequence number, never file time; the send journal."""

from __future__ import annotations

import json
import os

from backend.controller.checkpoint import CheckpointStore, Journal, read_journals
from seer.protocol.wire import dumps


def state(serial: int) -> dict:
    return {"epoch": 5, "serial": serial, "nodes": [], "model": []}


def test_newest_is_chosen_by_sequence_even_when_all_share_one_second(tmp_path):
    store = CheckpointStore(tmp_path)
    for seq in (1, 2, 3):
        store.write(seq, state(seq * 10), written_at=1000.0)
    # Same modification time for all, and the oldest made to look newest.
    for path in tmp_path.glob("checkpoint-*.json"):
        os.utime(path, (1_000_000, 1_000_000))
    os.utime(tmp_path / "checkpoint-000000000001.json", (2_000_000, 2_000_000))
    seq, loaded = store.newest()
    assert (seq, loaded["serial"]) == (3, 30)


def test_a_damaged_newest_checkpoint_is_skipped(tmp_path):
    store = CheckpointStore(tmp_path)
    store.write(1, state(10), 0.0)
    store.write(2, state(20), 0.0)
    path = tmp_path / "checkpoint-000000000002.json"
    document = json.loads(path.read_text())
    document["state"]["serial"] = 999  # checksum no longer matches
    path.write_text(json.dumps(document))
    seq, loaded = store.newest()
    assert (seq, loaded["serial"]) == (1, 10)


def test_a_truncated_checkpoint_is_skipped(tmp_path):
    store = CheckpointStore(tmp_path)
    store.write(1, state(10), 0.0)
    (tmp_path / "checkpoint-000000000002.json").write_text('{"format": 1, "seq"')
    assert store.newest()[0] == 1


def test_checkpoint_named_for_another_sequence_is_skipped(tmp_path):
    store = CheckpointStore(tmp_path)
    store.write(1, state(10), 0.0)
    os.rename(tmp_path / "checkpoint-000000000001.json", tmp_path / "checkpoint-000000000009.json")
    assert store.newest() is None


def test_checkpoint_files_are_private_and_no_temporary_is_left(tmp_path):
    store = CheckpointStore(tmp_path)
    path = store.write(1, state(1), 0.0)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert list(tmp_path.glob(".*")) == []


def test_next_sequence_never_reuses_one_even_if_damaged(tmp_path):
    store = CheckpointStore(tmp_path)
    (tmp_path / "checkpoint-000000000007.json").write_text("garbage")
    Journal(tmp_path, 9).close()
    assert store.next_seq() == 10


def test_prune_keeps_the_newest_and_the_journals_they_need(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for seq in range(1, 5):
        store.write(seq, state(seq), 0.0)
        Journal(tmp_path, seq).close()
    store.prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-000000000003.json", "checkpoint-000000000004.json",
        "journal-000000000003.log", "journal-000000000004.log",
    ]


def test_journal_records_are_read_back_across_files_in_order(tmp_path):
    j1 = Journal(tmp_path, 1)
    j1.append(5, 1, 10.0, dumps([{"a": 1}, {"a": 2}]))
    j1.close()
    j2 = Journal(tmp_path, 2)
    j2.append(5, 3, 11.0, dumps([{"a": 3}]))
    j2.close()
    records = list(read_journals(tmp_path, 1))
    assert [(r.serial, r.last_serial, r.sent_at) for r in records] == [(1, 2, 10.0), (3, 3, 11.0)]
    assert [r.serial for r in read_journals(tmp_path, 2)] == [3]


def test_a_torn_last_record_is_ignored(tmp_path):
    j = Journal(tmp_path, 1)
    j.append(5, 1, 10.0, dumps([{"a": 1}]))
    j.append(5, 2, 11.0, dumps([{"a": 2}]))
    j.close()
    path = tmp_path / "journal-000000000001.log"
    path.write_bytes(path.read_bytes()[:-3])
    assert [r.serial for r in read_journals(tmp_path, 1)] == [1]


def test_a_failed_journal_write_raises_and_leaves_the_journal_as_it_was(tmp_path, monkeypatch):
    import errno

    from backend.controller.checkpoint import JournalError

    j = Journal(tmp_path, 1)
    j.append(5, 1, 10.0, dumps([{"a": 1}]))
    size = j.path.stat().st_size
    real_write = os.write
    calls = []

    def short_then_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:5]))  # a short write...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(os, "write", short_then_full)
    try:
        j.append(5, 2, 11.0, dumps([{"a": 2}]))
    except JournalError as e:
        assert "No space left" in str(e)
    else:
        raise AssertionError("expected JournalError")
    monkeypatch.undo()
    assert j.path.stat().st_size == size
    j.append(5, 2, 12.0, dumps([{"a": 2}]))
    j.close()
    assert [r.serial for r in read_journals(tmp_path, 1)] == [1, 2]
