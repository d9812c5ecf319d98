"""The controller's state model: what a snapshot gives each node."""

from __future__ import annotations

from backend.controller.statemodel import StateModel


def set_msg(group="g", **values):
    return {"type": "SET", "agent": "A", "group": group, "vars": values}


def run(command, time=None):
    m = {"type": "COMMAND", "agent": "A", "group": "g", "command": command, "args": {}}
    if time is not None:
        m["time"] = time
    return m


def test_snapshot_carries_latest_values_per_node():
    m = StateModel()
    m.apply(1, set_msg(rate=1, size=5), None, 0.0)
    m.apply(2, set_msg(rate=2), frozenset({"n1"}), 1.0)
    snap1 = m.snapshot_for("n1", now=10.0)["groups"][0]
    snap2 = m.snapshot_for("n2", now=10.0)["groups"][0]
    assert snap1["vars"] == {"rate": 2, "size": 5}
    assert snap2["vars"] == {"rate": 1, "size": 5}


def test_run_state_follows_the_last_run_command_for_that_node():
    m = StateModel()
    m.apply(1, run("START"), None, 0.0)
    m.apply(2, run("STOP"), frozenset({"n2"}), 1.0)
    assert m.snapshot_for("n1", 5.0)["groups"][0]["run"] == "running"
    assert m.snapshot_for("n2", 5.0)["groups"][0]["run"] == "stopped"


def test_events_are_not_state():
    m = StateModel()
    m.apply(1, dict(run("START"), command="RESET"), None, 0.0)
    assert m.snapshot_for("n1", 5.0)["groups"] == []
    assert not m.is_state({"type": "COMMAND", "command": "RESET"})
    assert m.is_state(set_msg(a=1)) and m.is_state(run("STOP"))


def test_covered_entries_are_dropped_so_the_model_stays_small():
    m = StateModel()
    for serial in range(1, 1001):
        m.apply(serial, set_msg(rate=serial), None, float(serial))
    entries = m.to_json()["groups"][0]["vars"]["rate"]
    assert len(entries) == 1 and entries[0][1] == 1000


def test_scheduled_start_is_not_applied_early_but_handed_over():
    m = StateModel()
    m.apply(1, run("STOP"), None, 0.0)
    m.apply(2, run("START", time=60.0), None, 1.0)
    snap = m.snapshot_for("n1", now=30.0)
    assert snap["groups"][0]["run"] == "stopped"
    assert snap["scheduled"] == [[2, {"type": "COMMAND", "agent": "A", "group": "g",
                                      "command": "START", "args": {}, "time": 60.0,
                                      "target": ["n1"]}]]
    later = m.snapshot_for("n1", now=61.0)
    assert later["groups"][0]["run"] == "running" and later["scheduled"] == []


def test_a_scheduled_set_does_not_hide_an_earlier_immediate_one_until_due():
    m = StateModel()
    m.apply(1, set_msg(rate=1), None, 0.0)
    m.apply(2, dict(set_msg(rate=9), time=100.0), None, 1.0)
    m.apply(3, set_msg(rate=2), None, 2.0)
    assert m.snapshot_for("n1", 50.0)["groups"][0]["vars"] == {"rate": 2}
    assert m.snapshot_for("n1", 100.0)["groups"][0]["vars"] == {"rate": 9}


def test_model_survives_a_checkpoint_round_trip():
    m = StateModel()
    m.apply(1, set_msg(rate=1), frozenset({"n1"}), 0.0)
    m.apply(2, run("START"), None, 1.0)
    again = StateModel.from_json(m.to_json())
    assert again.snapshot_for("n1", 5.0) == m.snapshot_for("n1", 5.0)
    assert again.snapshot_for("n2", 5.0) == m.snapshot_for("n2", 5.0)


def test_a_time_in_the_past_takes_effect_in_serial_order_like_on_the_nodes():
    m = StateModel()
    m.apply(1, run("START"), None, 100.0)
    m.apply(2, run("STOP", time=97.0), None, 100.0)  # allowed: up to 5 s in the past
    assert m.snapshot_for("n1", 101.0)["groups"][0]["run"] == "stopped"


def test_put_files_are_state_and_listed_in_snapshots():
    m = StateModel()
    put = {"type": "PUT", "name": "a.py", "kind": "agent", "mode": 420, "size": 3, "sha256": "ab"}
    m.apply(1, put, frozenset({"n1"}), 0.0)
    m.apply(2, dict(put, sha256="cd"), frozenset({"n1"}), 1.0)
    assert m.snapshot_for("n1", 5.0)["files"] == [
        {"name": "a.py", "kind": "agent", "mode": 420, "size": 3, "sha256": "cd"}]
    assert m.snapshot_for("n2", 5.0)["files"] == []
    assert m.referenced_blobs() == {"cd"}
    assert StateModel.from_json(m.to_json()).snapshot_for("n1", 5.0) == m.snapshot_for("n1", 5.0)
