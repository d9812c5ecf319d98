"""Job history: each command's id, sender and every node's outcome -- late ones
too -- kept, bounded, across restarts (unit tests on fakes)."""

from __future__ import annotations

from controller_lab import command, make_controller
from backend.controller.jobs import Jobs
from seer.protocol.wire import Frame
from seer.testing import FakeReactor


def applied(serial, status="applied", error=None):
    return Frame({"type": "REPORT", "ack": serial, "outcomes": [[serial, status, error, None]]})


def test_a_job_has_an_id_its_sender_and_each_nodes_outcome(lab):
    n1, n2 = lab.register("n1"), lab.register("n2")
    alice = lab.client()
    lab.request(alice, command(target="n1,n2", timeout=5))
    accepted = alice.of_type("ACCEPTED")[0]
    job_id = accepted.get("job")
    assert job_id == accepted.get("serial") == 1
    lab.c.frameReceived(n1, applied(1))
    lab.c.frameReceived(n2, applied(1, "failed", "ValueError: no"))
    assert alice.of_type("RESULT")[0].get("job") == job_id
    lab.request(alice, {"type": "JOB", "id": 9, "job": job_id})
    job = alice.of_type("REPLY")[-1].get("job")
    assert job["sender"] == "alice" and job["agent"] == "NOOP" and job["command"] == "START"
    assert job["outcomes"] == {"n1": {"status": "applied"},
                               "n2": {"status": "failed", "error": "ValueError: no"}}
    assert job["counts"] == {"applied": 1, "failed": 1}


def test_an_outcome_after_the_client_stopped_waiting_is_kept(lab):
    n1, _ = lab.register("n1"), lab.register("n2")
    alice = lab.client()
    lab.request(alice, command(target="n1,n2", timeout=2))
    lab.c.frameReceived(n1, applied(1))
    lab.reactor.advance(2)  # n2 said nothing in time: the client got "unconfirmed"
    assert alice.of_type("RESULT")[0].get("outcomes")["n2"]["status"] == "unconfirmed"
    n2_again = lab.register("n2")
    lab.c.frameReceived(n2_again, applied(1))
    lab.request(alice, {"type": "JOB", "id": 3, "job": 1})
    job = alice.of_type("REPLY")[-1].get("job")
    assert job["outcomes"]["n2"] == {"status": "applied", "late": True}
    assert job["counts"] == {"applied": 2}


def test_jobs_lists_the_latest_first_and_an_unknown_job_is_refused(lab):
    lab.register("n1")
    alice = lab.client()
    for i in range(3):
        lab.request(alice, command(id=10 + i, command="START" if i == 0 else "STOP",
                                   target="n1"))
    lab.request(alice, {"type": "JOBS", "id": 20, "limit": 2})
    jobs = alice.of_type("REPLY")[-1].get("jobs")
    assert [j["job"] for j in jobs] == [3, 2]
    assert jobs[0]["command"] == "STOP" and jobs[0]["counts"] == {"pending": 1}
    lab.request(alice, {"type": "JOB", "id": 21, "job": 99})
    assert "no job 99 (jobs 1 to 3 are kept" in alice.of_type("ERROR")[-1].get("error")
    lab.request(alice, {"type": "JOBS", "id": 22, "limit": 0})
    assert "limit must be a count" in alice.of_type("ERROR")[-1].get("error")


def test_the_history_survives_a_restart(lab, tmp_path, certs_dir):
    n1 = lab.register("n1")
    alice = lab.client()
    lab.request(alice, command(target="n1"))
    lab.c.frameReceived(n1, applied(1))
    lab.c.stopService()
    again = make_controller(FakeReactor(), certs_dir, tmp_path / "state")
    job = again.jobs.get(1)
    assert job["sender"] == "alice" and job["outcomes"] == {"n1": {"status": "applied"}}
    again.stopService()


def test_the_history_is_bounded_and_its_file_rewritten(tmp_path):
    from twisted.internet.defer import maybeDeferred

    clock = FakeReactor()
    jobs = Jobs(tmp_path, clock, lambda f, *a: maybeDeferred(f, *a), keep=5)
    for serial in range(1, 40):
        jobs.started(serial, {"type": "COMMAND", "origin": "a"}, ["n1"], 0.0)
        jobs.finished(serial, {"n1": {"status": "applied"}})
        clock.advance(1.0)  # written once a second, in one go
    assert jobs.known() == (35, 39)
    lines = (tmp_path / "jobs.jsonl").read_text().splitlines()
    assert len(lines) <= 3 * 5
    reloaded = Jobs(tmp_path, clock, lambda f, *a: maybeDeferred(f, *a), keep=5)
    assert reloaded.load() == 5 and reloaded.known() == (35, 39)
