"""The Scheduler holds messages until their time (task.Clock, no sleeps)."""

from __future__ import annotations

from twisted.internet.task import Clock

from backend.node.scheduler import Scheduler


def make(start: float = 1000.0):
    clock = Clock()
    clock.advance(start)
    out: list[int] = []
    return clock, out, Scheduler(clock, lambda serial, message: out.append(serial))


def test_messages_without_time_pass_at_once():
    clock, out, s = make()
    s.submit(1, {"type": "COMMAND"})
    assert out == [1]


def test_past_time_passes_at_once():
    clock, out, s = make()
    s.submit(1, {"time": 999.0})
    assert out == [1]


def test_future_message_waits_for_its_time():
    clock, out, s = make()
    s.submit(1, {"time": 1060.0})
    clock.advance(59.9)
    assert out == []
    clock.advance(0.1)
    assert out == [1]
    assert len(s) == 0


def test_later_immediate_messages_do_not_queue_behind_a_scheduled_one():
    clock, out, s = make()
    s.submit(1, {"time": 1010.0})
    s.submit(2, {})
    assert out == [2]
    clock.advance(10)
    assert out == [2, 1]


def test_same_time_goes_in_serial_order_and_earlier_time_first():
    clock, out, s = make()
    s.submit(3, {"time": 1005.0})
    s.submit(1, {"time": 1005.0})
    s.submit(2, {"time": 1002.0})
    assert s.pending() == [(1002.0, 2), (1005.0, 1), (1005.0, 3)]
    clock.advance(5)
    assert out == [2, 1, 3]


def test_cancel_forgets_everything_and_leaves_no_timer():
    clock, out, s = make()
    s.submit(1, {"time": 1100.0})
    s.cancel()
    assert clock.getDelayedCalls() == []
    clock.advance(200)
    assert out == []
