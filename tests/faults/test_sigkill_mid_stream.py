"""SIGKILL of the controller or of a daemon, at rest and mid-stream: nothing
runs twice, nothing accepted is lost, serials continue (promises 2, 3, 6).

Four daemons on 127.0.0.1 share the module's lab; each test has its own
RECORDER group, whose records on every node are what that node ran, in
order.

* The controller killed between commands, and restarted from its
  checkpoint and journal: epoch and serial are where they were, the next
  command takes the next serial, the group keeps its variables.
* The controller killed while a client streams commands (30 in flight):
  each command is either ACCEPTED -- and then applied on every node, once,
  after the restart, whether or not its RESULT came before the kill -- or
  has no ACCEPTED, which the client names (it was not confirmed), and is
  then applied on every node or on none.  No node runs a command twice or
  out of order, and the serials continue past every accepted one.
* A daemon killed while commands stream, and started again (as the
  testbed's supervisor would): it comes back by a snapshot, runs no
  command twice, and reports every command sent while it was gone as
  skipped (events are not replayed); the other nodes run them all.
"""

from __future__ import annotations

import signal

import pytest

from e2e import eventually, lab_for, recorded_numbers, records
from seer.client import ControllerUnreachable

pytestmark = pytest.mark.e2e

NODES = [f"n{i}" for i in range(1, 5)]
STREAM = 300
#: Commands in flight while the stream runs.
WINDOW = 30


@pytest.fixture(scope="module")
def lab(tmp_path_factory, certs_dir):
    lab = lab_for(tmp_path_factory.mktemp("sigkill"), certs_dir, len(NODES))
    with lab:
        yield lab


def node_up(lab, node: str) -> bool:
    with lab.experiment() as exp:
        return any(n["name"] == node and n["up"] for n in exp.nodes())


def test_controller_killed_and_restarted_continues_serials(lab):
    """Promise 6: a controller restarted from its checkpoint continues the
    serial sequence, and the nodes keep what they had."""
    with lab.experiment() as exp:
        exp.agent("RECORDER", "quiet").set(label="before")
        for i in range(5):
            exp.command("RECORDER", "quiet", "RECORD", {"i": i})
        before = exp.status()
    lab.kill_controller(signal.SIGKILL)
    lab.start_controller()
    took = lab.wait_registered(timeout=60)
    with lab.experiment() as exp:
        after = exp.status()
        result = exp.command("RECORDER", "quiet", "RECORD", {"i": 99})
    assert after["epoch"] == before["epoch"]
    assert after["serial"] == before["serial"]
    assert result.serial == before["serial"] + 1
    assert result.ok and len(result.outcomes) == len(NODES)
    print(f"\nall {len(NODES)} daemons re-registered {took:.1f} s after the restart")
    for node in NODES:
        assert recorded_numbers(lab, node, "quiet") == [0, 1, 2, 3, 4, 99]
        assert records(lab, node, "quiet")[-1]["label"] == "before"


def test_controller_killed_mid_stream_loses_nothing_accepted_and_runs_nothing_twice(lab):
    """Promises 2, 3 and 6: a controller SIGKILLed with commands in flight
    loses none it ACCEPTED, names the others, runs none twice, reuses no
    serial."""
    kill_at = STREAM // 2
    with lab.experiment() as exp:
        exp.set("RECORDER", "stream", {"label": "stream"})
        epoch = exp.status()["epoch"]
        connection = exp.connection
        sent: list[tuple[int, object]] = []  # (i, request id)
        try:
            for i in range(STREAM):
                if i == kill_at:
                    lab.kill_controller(signal.SIGKILL)  # with WINDOW commands in flight
                    break
                sent.append((i, exp.submit_command("RECORDER", "stream", "RECORD", {"i": i},
                                                   timeout=60).request_id))
                if len(sent) > WINDOW:
                    connection.wait(sent[-WINDOW - 1][1], 30)  # that one's ACCEPTED
            # Read all the controller said before it died.
            with pytest.raises(ControllerUnreachable):
                connection.poll("nothing answers this", 30)
        finally:
            if lab.controller.poll() is None:
                lab.kill_controller(signal.SIGKILL)
        accepted, resulted = {}, {}
        for i, request_id in sent:
            frames = []
            while (frame := connection.poll(request_id, 0)) is not None:
                frames.append(frame)
            for frame in frames:
                if frame.type == "ACCEPTED":
                    accepted[i] = frame.get("serial")
                elif frame.type == "RESULT":
                    resulted[i] = frame.get("outcomes")
        # (The ACCEPTED of the oldest ones the loop read itself.)
        for i, _ in sent[:max(0, len(sent) - WINDOW)]:
            accepted.setdefault(i, None)
    unconfirmed = [i for i, _ in sent if i not in accepted]  # named: no ACCEPTED came
    in_flight = [i for i in accepted if i not in resulted]
    lab.start_controller()
    took = lab.wait_registered(timeout=60)
    with lab.experiment() as exp:
        status = exp.status()
        last = exp.command("RECORDER", "stream", "RECORD", {"i": 10_000}, timeout=30)
    print(f"\ncontroller SIGKILLed after {len(sent)} commands sent: {len(resulted)} had their "
          f"RESULT, {len(in_flight)} only their ACCEPTED, {len(unconfirmed)} no ACCEPTED "
          f"(named: {unconfirmed[:5]}...); every daemon back {took:.1f} s after the restart")
    assert status["epoch"] == epoch
    serials = [s for s in accepted.values() if s is not None]
    assert serials and last.serial == status["serial"] + 1 > max(serials)
    assert last.ok and len(last.outcomes) == len(NODES), last.problem_summary()
    assert in_flight or unconfirmed, "the kill came after the stream: nothing was in flight"
    for outcomes in resulted.values():
        assert {o["status"] for o in outcomes.values()} == {"applied"}
    ran = {node: recorded_numbers(lab, node, "stream") for node in NODES}
    for node, numbers in ran.items():
        assert numbers == sorted(set(numbers)), f"{node} ran a command twice or out of order"
        assert numbers[-1] == 10_000
        assert set(accepted) <= set(numbers), (node, sorted(set(accepted) - set(numbers)))
    # Those not confirmed ran on every node or on none.
    assert len({tuple(i for i in numbers if i in unconfirmed) for numbers in ran.values()}) == 1


def test_a_daemon_killed_mid_stream_comes_back_by_snapshot_and_runs_nothing_twice(lab):
    """Promises 2 and 3: a daemon SIGKILLed mid-stream catches up by a
    snapshot, runs nothing twice, and what it missed is reported skipped."""
    victim, down_at, back_at = "n2", 100, 150
    results = []
    with lab.experiment() as exp:
        exp.set("RECORDER", "dstream", {"label": "dstream"})
        pending = []
        for i in range(STREAM):
            if i == down_at:
                lab.daemons[victim].send_signal(signal.SIGKILL)
                lab.daemons[victim].wait(timeout=10)
                eventually(lambda: node_up(lab, victim), lambda up: not up, timeout=15,
                           interval=0.1)
            if i == back_at:
                lab.start_daemon(victim)
            pending.append(exp.submit_command("RECORDER", "dstream", "RECORD", {"i": i},
                                              timeout=60))
            # While the victim is down every result waits for it: no window then.
            if not down_at <= i < back_at and len(pending) - len(results) > WINDOW:
                results.append(pending[len(results)].result(check=False))
        results += [p.result(check=False) for p in pending[len(results):]]
        last = exp.command("RECORDER", "dstream", "RECORD", {"i": 10_000}, timeout=30)
        snapshot = next(n for n in exp.nodes() if n["name"] == victim).get("snapshot")
    assert last.ok and len(last.outcomes) == len(NODES), last.problem_summary()
    for node in NODES:
        if node != victim:
            assert recorded_numbers(lab, node, "dstream") == [*range(STREAM), 10_000], node
            assert all(r.outcomes[node].status == "applied" for r in results), node
    ran = recorded_numbers(lab, victim, "dstream")
    assert ran == sorted(set(ran)) and ran[-1] == 10_000, "a command ran twice or out of order"
    statuses = {i: r.outcomes[victim] for i, r in enumerate(results)}
    counts: dict[str, int] = {}
    for outcome in statuses.values():
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    print(f"\n{victim} SIGKILLed at command {down_at}, started again at {back_at}: its "
          f"outcomes {counts}; it ran {len(ran) - 1} of {STREAM}; snapshot {snapshot}")
    for i, outcome in statuses.items():
        assert outcome.status in ("applied", "skipped"), (i, outcome.describe())
        if outcome.status == "applied":
            assert i in ran, f"{i} reported applied but not run"
        else:
            assert "events are not replayed" in outcome.error, outcome.error
    assert all(statuses[i].status == "skipped" for i in range(down_at, back_at))
    assert set(range(down_at)) - set(ran) <= {i for i, o in statuses.items()
                                               if o.status == "skipped"}
