"""One bad message never harms another (issue 12, part 1), end to end.

Two daemons on 127.0.0.1 load FAULTY (isolated: a worker process per group)
and FAULTY_INLINE (ISOLATED = False: inside the daemon).  A bad message --
a SET whose ``processArgs`` or ``validate`` raises, a COMMAND whose result
JSON cannot carry -- goes in the *same datagram* as a healthy NOOP ECHO to
another group (the client writes both requests at once, the controller
stamps them in one turn, and a member of the multicast group checks that
one datagram carried both).  The bad one must fail on every node saying
why, the healthy one must be applied, and the bad message's group must
answer its next command.  ``sys.exit()`` and KeyboardInterrupt in a handler
fail that message and leave the group working.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from e2e import GroupTap, lab_for
from seer.protocol.datagrams import peek_messages

pytestmark = pytest.mark.e2e

FAULT_AGENTS = Path(__file__).resolve().parent / "agents"
NODES = ["n1", "n2"]
TIMEOUT = 8.0  # for each message: long enough on a loaded machine, short on failure


@pytest.fixture(scope="module")
def lab(tmp_path_factory, certs_dir):
    from conftest import TEST_AGENTS

    lab = lab_for(tmp_path_factory.mktemp("bad-messages"), certs_dir, len(NODES),
                  common_daemon_args=["--agent-dirs", str(TEST_AGENTS),
                                      "--agent-dirs", str(FAULT_AGENTS)])
    with lab:
        yield lab


@contextmanager
def one_write(exp):
    """The requests sent inside go to the controller in one write, so that
    it reads them at once and stamps them in the same turn."""
    connection = exp.connection
    real = connection._sock
    written: list[bytes] = []

    class Corked:
        def sendall(self, data: bytes) -> None:
            written.append(data)

        def __getattr__(self, name):
            return getattr(real, name)

    connection._sock = Corked()
    try:
        yield
    finally:
        connection._sock = real
        real.sendall(b"".join(written))


def datagram_messages(data: bytes) -> list[dict]:
    return [m for m in peek_messages(data) if isinstance(m, dict)]


def send_together(lab, exp, bad: dict, healthy_group: str):
    """``bad`` and a NOOP ECHO to ``healthy_group``, in one datagram (checked)."""
    tap = GroupTap(lab)
    try:
        with one_write(exp):
            if bad["type"] == "SET":
                bad_pending = exp.submit_set(bad["agent"], bad["group"], bad["vars"],
                                             timeout=TIMEOUT)
            else:
                bad_pending = exp.submit_command(bad["agent"], bad["group"], bad["command"],
                                                 bad.get("args"), timeout=TIMEOUT)
            healthy_pending = exp.submit_command("NOOP", healthy_group, "ECHO", {"x": 1},
                                                 timeout=TIMEOUT)
        carried = datagram_messages(tap.capture(
            lambda d: any(m.get("group") == healthy_group for m in datagram_messages(d))))
    except TimeoutError:
        carried = []
    finally:
        tap.close()
    groups = [m.get("group") for m in carried]
    assert bad["group"] in groups and healthy_group in groups, \
        f"the two messages did not share a datagram: {carried}"
    return bad_pending.result(check=False), healthy_pending.result(check=False)


BAD = {
    "processArgs": ({"type": "SET", "vars": {"mode": "processArgs"}},
                    "RuntimeError: processArgs broke on purpose"),
    "validate": ({"type": "SET", "vars": {"mode": "validate"}},
                 "LookupError: validate broke on purpose"),
    "object result": ({"type": "COMMAND", "command": "RESULT", "args": {"kind": "object"}},
                      "result['x'] is an object"),
    "nan result": ({"type": "COMMAND", "command": "RESULT", "args": {"kind": "nan"}},
                   "result['x'] is nan, which JSON cannot carry"),
}


def statuses(result) -> dict[str, str]:
    return {node: o.status for node, o in result.outcomes.items()}


@pytest.mark.parametrize("agent", ["FAULTY_INLINE", "FAULTY"])
@pytest.mark.parametrize("what", list(BAD))
def test_a_bad_message_fails_alone_next_to_a_healthy_one_in_the_same_datagram(lab, agent, what):
    message, why = BAD[what]
    group = f"{what.replace(' ', '-')}-{agent.lower()}"
    with lab.experiment() as exp:
        # Both groups exist on every node (a controller may refuse a command
        # to a group that no node has).
        exp.set(agent, group, {"label": "ok"})
        exp.set("NOOP", f"healthy-{group}", {"note": "healthy"})
        bad, healthy = send_together(lab, exp, dict(message, agent=agent, group=group),
                                     f"healthy-{group}")
        assert statuses(healthy) == {n: "applied" for n in NODES}, healthy.problem_summary()
        assert statuses(bad) == {n: "failed" for n in NODES}, bad.problem_summary()
        for node in NODES:
            assert why in bad.outcomes[node].error, bad.outcomes[node].error
        # The bad message's group keeps working, on every node.
        after = exp.command(agent, group, "OK", timeout=TIMEOUT, check=False)
        assert statuses(after) == {n: "applied" for n in NODES}, after.problem_summary()
        assert all(o.result["label"] == "ok" for o in after.outcomes.values())


@pytest.mark.parametrize("agent", ["FAULTY_INLINE", "FAULTY"])
@pytest.mark.parametrize("command, why", [("EXIT", "SystemExit: 4"),
                                          ("INTERRUPT", "KeyboardInterrupt")])
def test_sys_exit_and_keyboard_interrupt_in_a_handler_fail_that_message_only(
        lab, agent, command, why):
    group = f"{command.lower()}-{agent.lower()}"
    with lab.experiment() as exp:
        exp.set(agent, group, {"label": "still here"})
        failed = exp.command(agent, group, command, timeout=TIMEOUT, check=False)
        assert statuses(failed) == {n: "failed" for n in NODES}, failed.problem_summary()
        assert all(o.error.startswith(why) for o in failed.outcomes.values()), \
            failed.problem_summary()
        after = exp.command(agent, group, "OK", timeout=TIMEOUT, check=False)
        assert statuses(after) == {n: "applied" for n in NODES}, after.problem_summary()
        assert all(o.result["label"] == "still here" for o in after.outcomes.values())
    assert all(p.poll() is None for p in lab.daemons.values())  # no daemon went down
