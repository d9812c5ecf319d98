"""The Serializer: in order, exactly once, gaps repaired."""

from __future__ import annotations

import random

import pytest

from hypothesis import given, settings, strategies as st

from backend.node.serializer import Serializer


def feed(s: Serializer, *serials: int) -> list[int]:
    return [n for n, _ in s.receive([(x, f"m{x}") for x in serials])]


def test_in_order_messages_pass_straight_through():
    s = Serializer()
    assert feed(s, 1, 2, 3) == [1, 2, 3]
    assert s.delivered_upto == 3


def test_duplicates_and_replays_are_dropped_and_counted():
    s = Serializer()
    feed(s, 1, 2)
    assert feed(s, 1, 2, 2) == []
    assert s.duplicates == 3


def test_future_message_is_held_until_the_gap_is_filled():
    s = Serializer()
    assert feed(s, 1, 3, 4) == [1]
    assert s.gaps() == [(2, 2)]
    assert feed(s, 2) == [2, 3, 4]
    assert s.gaps() == []


def test_a_held_message_arriving_twice_is_a_duplicate():
    s = Serializer()
    feed(s, 5)
    assert feed(s, 5) == []
    assert s.duplicates == 1


def test_ping_reveals_a_lost_last_message():
    s = Serializer()
    feed(s, 1, 2)
    s.observe(4)
    assert s.gaps() == [(3, 4)]
    s.observe(3)  # an older ping changes nothing
    assert s.gaps() == [(3, 4)]


def test_gaps_are_ranges_around_held_messages():
    s = Serializer()
    feed(s, 1, 4, 5, 8)
    s.observe(10)
    assert s.gaps() == [(2, 3), (6, 7), (9, 10)]
    assert s.missing == 6


def test_repairs_asked_at_once_then_again_after_the_retry_interval():
    s = Serializer(retry_after=0.25)
    feed(s, 1, 3)
    assert s.due_repairs(now=10.0) == [(2, 2)]
    assert s.due_repairs(now=10.1) == []
    assert s.next_retry_in(10.1) == pytest.approx(0.15)
    assert s.due_repairs(now=10.3) == [(2, 2)]


def test_new_gaps_are_asked_for_without_waiting_for_the_retry():
    s = Serializer(retry_after=0.25)
    feed(s, 1, 3)
    assert s.due_repairs(now=10.0) == [(2, 2)]
    feed(s, 6)
    assert s.due_repairs(now=10.01) == [(4, 5)]


def test_retry_interval_doubles_without_progress_and_resets_with_it():
    s = Serializer(retry_after=0.25, max_retry_after=1.0)
    feed(s, 1, 4)
    now = 0.0
    assert s.due_repairs(now)
    intervals = []
    for _ in range(4):
        wait = s.next_retry_in(now)
        intervals.append(round(wait, 3))
        now += wait
        assert s.due_repairs(now)
    assert intervals == [0.25, 0.5, 1.0, 1.0]
    feed(s, 2)  # progress
    now += s.next_retry_in(now)
    s.due_repairs(now)
    assert round(s.next_retry_in(now), 3) == 0.25


def test_no_gaps_means_no_repairs():
    s = Serializer()
    feed(s, 1)
    assert s.due_repairs(0.0) == []
    assert s.next_retry_in(0.0) is None


def test_snapshot_skips_ahead_and_releases_later_held_messages():
    s = Serializer()
    feed(s, 1, 7, 12)
    assert [n for n, _ in s.skip_to(10)] == []
    assert s.delivered_upto == 10
    assert s.held == {12: "m12"}
    assert feed(s, 11) == [11, 12]


def test_snapshot_older_than_what_was_delivered_changes_nothing():
    s = Serializer()
    feed(s, 1, 2, 3)
    assert s.skip_to(2) == []
    assert s.delivered_upto == 3


def test_held_messages_are_bounded_and_overflow_is_repaired_later():
    s = Serializer(max_held=2)
    feed(s, 3, 4, 5)
    assert s.overflowed == 1
    assert 5 not in s.held
    assert feed(s, 1, 2) == [1, 2, 3, 4]
    assert s.gaps() == [(5, 5)]


@given(st.integers(1, 200), st.integers(0, 2**32), st.floats(0, 0.5))
@settings(max_examples=200)
def test_any_order_with_duplicates_delivers_each_serial_once_in_order(n, seed, dup_rate):
    rng = random.Random(seed)
    arrivals = list(range(1, n + 1))
    arrivals += [rng.randint(1, n) for _ in range(int(n * dup_rate))]
    rng.shuffle(arrivals)
    s = Serializer()
    delivered = []
    for serial in arrivals:
        delivered += [x for x, _ in s.receive([(serial, None)])]
    assert delivered == list(range(1, n + 1))
    assert s.held == {}
