"""Collecting per-node outcomes, with deadlines on a task.Clock."""

from __future__ import annotations

from twisted.internet.task import Clock

from backend.controller.outcomes import OutcomeTracker


def make():
    clock = Clock()
    done: list = []
    tracker = OutcomeTracker(clock, lambda node: f"{node} silent")
    return clock, done, tracker


def test_result_when_every_node_answered():
    clock, done, t = make()
    t.expect(5, ["a", "b"], 10, lambda s, o: done.append((s, o)))
    t.record("a", 5, "applied")
    assert done == []
    t.record("b", 5, "failed", "ValueError: no")
    assert done == [(5, {"a": {"status": "applied"},
                         "b": {"status": "failed", "error": "ValueError: no"}})]
    assert clock.getDelayedCalls() == []


def test_missing_nodes_become_unconfirmed_at_the_deadline():
    clock, done, t = make()
    t.expect(5, ["a", "b"], 10, lambda s, o: done.append(o))
    t.record("a", 5, "applied")
    clock.advance(9.9)
    assert done == []
    clock.advance(0.1)
    assert done == [{"a": {"status": "applied"}, "b": {"status": "unconfirmed", "error": "b silent"}}]


def test_outcomes_nobody_waits_for_are_ignored():
    clock, done, t = make()
    assert not t.record("a", 99, "applied")
    t.expect(5, ["a"], 10, lambda s, o: done.append(o))
    assert not t.record("zz", 5, "applied")
    assert t.record("a", 5, "applied")
    assert not t.record("a", 5, "applied")


def test_snapshot_settles_state_as_applied_and_events_as_skipped():
    clock, done, t = make()
    t.expect(1, ["a"], 10, lambda s, o: done.append((s, o)), is_state=True)
    t.expect(2, ["a"], 10, lambda s, o: done.append((s, o)), is_state=False)
    t.expect(3, ["a"], 10, lambda s, o: done.append((s, o)), is_state=True)
    t.caught_up("a", 2)
    assert done[0] == (1, {"a": {"status": "applied", "result": {"via": "snapshot"}}})
    assert done[1][1]["a"]["status"] == "skipped"
    assert len(t) == 1


def test_snapshot_leaves_messages_scheduled_for_later_to_report_themselves():
    clock, done, t = make()
    clock.advance(100)
    t.expect(1, ["a"], 10, lambda s, o: done.append(o), is_state=True, due=160.0)
    t.caught_up("a", 1)
    assert done == []


def test_no_nodes_completes_at_once():
    clock, done, t = make()
    t.expect(1, [], 10, lambda s, o: done.append(o))
    assert done == [{}]


def test_snapshot_skips_missed_events_even_when_they_were_due_later():
    clock, done, t = make()
    clock.advance(100)
    t.expect(1, ["a"], 10, lambda s, o: done.append(o), is_state=False, due=160.0)
    t.caught_up("a", 1)
    assert done[0]["a"]["status"] == "skipped"
