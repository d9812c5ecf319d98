"""The retransmit window and retireSerials (time passed as numbers)."""

from backend.controller.retransmit import RetransmitWindow


def test_datagrams_are_kept_per_serial():
    w = RetransmitWindow()
    w.add(1, 3, b"batch", now=0.0)
    w.add(4, 4, b"single", now=1.0)
    assert [w.get(s) for s in (1, 2, 3, 4, 5)] == [b"batch"] * 3 + [b"single", None]
    assert w.oldest == 1
    assert len(w) == 4


def test_entries_retire_after_two_minutes():
    w = RetransmitWindow()
    w.add(1, 1, b"a", now=0.0)
    w.add(2, 2, b"b", now=60.0)
    assert w.retire(now=120.0) == 0
    assert w.retire(now=120.5) == 1
    assert w.get(1) is None and w.get(2) == b"b"
    assert w.oldest == 2
    assert w.retire(now=181.0) == 1
    assert w.oldest is None


def test_window_is_bounded_by_entries():
    w = RetransmitWindow(max_entries=3)
    for serial in range(1, 6):
        w.add(serial, serial, b"x", now=float(serial))
    assert len(w) == 3
    assert w.oldest == 3
