"""Garbage from every door leaves the controller and the daemons serving
(promises 4 and 5), and the operator hears of it without a flooded log.

Two daemons on 127.0.0.1.  A fuzz smoke -- the short version of `python -m
bench faults`: 3,000 fuzzed datagrams of every kind a daemon drops (at most
1,000 a second) on the group, and 600 garbage connections at the
controller's TLS port (random bytes over TCP, a reset, TLS without a
certificate, with another experiment's, an experimenter's TLS then
garbage; at most 200 a second) -- after which a command is applied on both
nodes and nothing rogue was dispatched.  A stranger's certificate is
refused in the handshake, an experimenter's garbage frame is answered
ERROR, a node's certificate may not command.

What the operator sees (issue 13, section 2): connections that fail before
TLS completes are counted in the controller's counters (`seer status`) and
logged the first time and then every 1,000th, with the count -- 1,100 of
them add at most two lines, not 1,100; and a node's certificate that tries
an experimenter-only request is refused, counted and logged at warning
with the node's name, an audit trail.
"""

from __future__ import annotations

import random
import re
import socket
import ssl
from collections import Counter

import pytest

from bench import hostile
from e2e import eventually, lab_for, node_stats, recorded_numbers, records
from seer.protocol.certs import CONTROLLER_NAME, CertDirectory
from seer.protocol.tls import client_context
from seer.protocol.wire import FrameDecoder, encode_frame

pytestmark = pytest.mark.e2e

NODES = ["n1", "n2"]
PRE_TLS = ("tcp-garbage", "tcp-reset", "tls-no-certificate", "tls-foreign-ca")
#: Every request only an experimenter may send (docs/PROTOCOL.md, 2.2).
EXPERIMENTER_ONLY = ("COMMAND", "SET", "EXECUTE", "PUT", "GET", "NODES", "FORGET")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, certs_dir):
    lab = lab_for(tmp_path_factory.mktemp("fuzz"), certs_dir, len(NODES))
    with lab:
        with lab.experiment() as exp:
            exp.set("RECORDER", "g", {"label": "fuzz"})
        yield lab


@pytest.fixture
def door(lab, foreign_certs_dir) -> hostile.Door:
    return hostile.Door(lab.address, lab.certs, foreign_certs_dir, "experimenter")


def counters(lab) -> dict[str, int]:
    with lab.experiment() as exp:
        return exp.status()["counters"]


def log_lines(lab, text: str) -> list[str]:
    return [line for line in (lab.workdir / "controller.log").read_text().splitlines()
            if text in line]


def test_fuzzed_datagrams_and_garbage_connections_leave_everything_serving(
        lab, door, certs_dir, foreign_certs_dir):
    """Promises 4 and 5: garbage at every door is refused and changes
    nothing -- no rogue command runs, and both processes still serve."""
    with lab.experiment() as exp:
        stolen = hostile.register_as(lab.address, lab.certs, "n29")
        hostile.forget(exp, "n29")
    sender = hostile.GroupSender(lab.group, lab.group_port)
    made: Counter = Counter()
    rng = random.Random(7)
    pids = [p.pid for p in lab.daemons.values()]
    try:
        weights = dict.fromkeys(hostile.DATAGRAM_KINDS, 1.0)
        del weights["oversized"]  # 65 kB each, three fill a receive queue: sent apart
        sent = sender.send(hostile.fuzz_stream(weights, rng, stolen, stolen.epoch, made),
                           count=3000 - 3, rate=1000, seconds=60)
        for _ in range(3):
            hostile.wait_read(pids, lab.group_port)
            sent += sender.send(hostile.fuzz_stream({"oversized": 1}, rng, stolen,
                                                    stolen.epoch, made),
                                count=1, rate=1, seconds=5)
    finally:
        sender.close()
    assert sent == 3000
    kinds, results = hostile.hammer(door, hostile.CONNECTION_KINDS, count=600, rate=200,
                                    seconds=60)
    assert sum(kinds.values()) == 600
    assert not [r for r in results if "ANSWERED" in r or "no ERROR" in r], results

    host, port = "127.0.0.1", lab.port
    # A certificate from another experiment's CA is refused in the handshake.
    foreign = CertDirectory(foreign_certs_dir)
    context = client_context(foreign.ca.cert, foreign.experimenter("alice"))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with context.wrap_socket(socket.create_connection((host, port))) as s:
            s.sendall(encode_frame({"type": "NODES", "id": 1}))
            assert s.recv(100) == b""
    # A legitimate experimenter sending garbage frames gets an ERROR and is closed.
    ours = CertDirectory(certs_dir)
    context = client_context(ours.ca.cert, ours.experimenter("alice"))
    with context.wrap_socket(socket.create_connection((host, port)),
                             server_hostname=CONTROLLER_NAME) as s:
        s.sendall(b"\x00\x00\x00\x08garbage!")
        assert b"bad frame" in s.recv(4096)
    # A node certificate may not command.
    context = client_context(ours.ca.cert, ours.node("n2"))
    with context.wrap_socket(socket.create_connection((host, port)),
                             server_hostname=CONTROLLER_NAME) as s:
        s.sendall(encode_frame({"type": "COMMAND", "id": 1, "agent": "RECORDER",
                                "group": "g", "command": "START"}))
        assert b"a node may not send COMMAND" in s.recv(4096)

    # Still serving, all of them.
    assert lab.controller.poll() is None and all(p.poll() is None for p in lab.daemons.values())
    run = lab.cli("command", "RECORDER", "g", "RECORD", "i=5")
    assert run.returncode == 0, run.stdout + run.stderr
    for node in NODES:
        assert recorded_numbers(lab, node) == [5], node
    drops = set(hostile.DATAGRAM_KINDS.values())
    stats = eventually(lambda: node_stats(lab),
                       lambda st: all(s.get(r, 0) > 0 for s in st.values() for r in drops),
                       timeout=30)
    print(f"\nfuzz smoke: {sent} datagrams ({dict(made)}), connections {dict(kinds)}; "
          f"the daemons counted {stats}")
    for name, s in stats.items():
        # Nothing rogue ran: the fuzzed commands were for group "pwned".
        assert not (lab.workdir / "nodes" / name / "RECORDER-pwned").exists(), name
        for reason in drops:
            assert 0 < s.get(reason, 0), (name, reason, s)
        assert sum(s.get(r, 0) for r in drops) <= sent, (name, s)


def test_connections_failing_before_tls_are_counted_and_logged_once_per_thousand(lab, door):
    """Promise 5 as the operator sees it (issue 13, section 2): 1,100
    connections that fail before TLS are counted, and cost at most two
    log lines, not 1,100."""
    said = "closed before TLS completed"
    before = counters(lab).get("pre_tls_failures", 0)
    lines_before = len(log_lines(lab, said))
    kinds, results = hostile.hammer(door, PRE_TLS, count=1100, rate=250, seconds=90)
    assert sum(kinds.values()) == 1100, results
    after = eventually(lambda: counters(lab).get("pre_tls_failures", 0),
                       lambda n: n >= before + 1100, timeout=20, interval=0.2)
    assert after == before + 1100  # each counted once, in `seer status`
    new = log_lines(lab, said)[lines_before:]
    logged = [int(re.search(r"\((\d+) so far\)", line).group(1)) for line in new]
    assert logged == [n for n in range(before + 1, after + 1) if n == 1 or n % 1000 == 0], new
    print(f"\n1,100 connections failed before TLS: {len(new)} log line(s): {new}")


def test_a_node_certificate_trying_experimenter_requests_is_logged_with_its_name(
        lab, certs_dir):
    """Promise 4 (issue 13, section 2): a node may not act as an
    experimenter -- refused and counted, and now an audit trail naming it."""
    refused_before = counters(lab).get("refused_frames", 0)
    said = "only an experimenter may send"
    lines_before = len(log_lines(lab, said))
    ours = CertDirectory(certs_dir)
    context = client_context(ours.ca.cert, ours.node("n2"))  # n2 is compromised
    answers = []
    with context.wrap_socket(socket.create_connection(("127.0.0.1", lab.port)),
                             server_hostname=CONTROLLER_NAME) as s:
        decoder = FrameDecoder()
        for i, kind in enumerate(EXPERIMENTER_ONLY):
            s.sendall(encode_frame({"type": kind, "id": i, "agent": "RECORDER", "group": "g",
                                    "command": "START", "name": "x.py", "node": "n1"}))
        s.settimeout(10)
        while len(answers) < len(EXPERIMENTER_ONLY):
            data = s.recv(1 << 16)
            assert data, f"closed after {answers}"
            answers += decoder.feed(data)
    for i, kind in enumerate(EXPERIMENTER_ONLY):
        assert answers[i].type == "ERROR" and answers[i].get("id") == i
        assert f"a node may not send {kind}" in answers[i].get("error")
    assert counters(lab).get("refused_frames", 0) == refused_before + len(EXPERIMENTER_ONLY)
    warned = eventually(lambda: log_lines(lab, said)[lines_before:],
                        lambda lines: len(lines) >= len(EXPERIMENTER_ONLY), timeout=10,
                        interval=0.1)
    for kind in EXPERIMENTER_ONLY:
        [line] = [w for w in warned if f" {kind}," in w]
        assert "#warn]" in line and "node n2" in line, line
    # And the nodes were commanded by none of it.
    assert all({"event": "START"} not in records(lab, node) for node in NODES)
