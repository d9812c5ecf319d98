"""Nobody else commands the nodes (promise 4): rogue datagrams on the group
are dropped, counted by reason, and never dispatched.

Four daemons on 127.0.0.1; the test is another process on the group (a
GroupTap: 127.0.0.1, TTL 1).  It injects, ten of each: random bytes,
truncated datagrams, another protocol version, an unknown kind, datagrams
over the size limit, a bad HMAC, a real datagram cut short, a datagram with
a *valid* HMAC and a bad signature -- what a compromised node can make: it
knows the HMAC key, which this test gets the way a node does, by
registering a node of the experiment's CA (n30) over TLS and reading its
WELCOME -- carrying a COMMAND with the next serial, exact replays of a real
datagram, and a real datagram moved to another epoch (with its HMAC left
as it was, and made again with the stolen key).

A datagram of another epoch that the controller signed cannot be made from
outside: the signing key dies with the controller's run (a restart without
its state makes a new epoch *and* new keys), so outside the controller
"another epoch" is a bad HMAC or a bad signature, and is counted as that.

Every daemon must dispatch exactly the real messages -- the records on
every node are the real commands, once each -- and count each rogue kind
under its reason, exactly, in the counters they send the controller
(`exp.nodes()` stats).  Injections go in bursts small enough for a socket's
receive queue, each once the daemons have read the last (their queues are
read in /proc), so that the kernel drops none and the counts can be exact.
"""

from __future__ import annotations

import random

import pytest

from bench import hostile
from e2e import GroupTap, eventually, lab_for, node_stats, recorded_numbers
from seer.protocol.datagrams import KIND_MESSAGES, peek_datagram_header

pytestmark = pytest.mark.e2e

NODES = [f"n{i}" for i in range(1, 5)]
EACH = 10
#: A burst the daemons' receive queues (212 kB by default) hold whole.
BURST_BYTES = 60_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory, certs_dir):
    lab = lab_for(tmp_path_factory.mktemp("rogue"), certs_dir, len(NODES))
    with lab:
        with lab.experiment() as exp:
            exp.set("RECORDER", "rogue", {"label": "real"})
        yield lab


def inject(lab, tap: GroupTap, datagrams: list[bytes]) -> None:
    """Send ``datagrams`` in bursts, each once every daemon has read the last."""
    pids = [p.pid for p in lab.daemons.values()]
    burst = 0
    for data in datagrams:
        if burst + len(data) > BURST_BYTES:
            hostile.wait_read(pids, lab.group_port)
            burst = 0
        tap.inject(data)
        burst += len(data)
    hostile.wait_read(pids, lab.group_port)


def test_rogue_datagrams_are_dropped_counted_and_never_dispatched(lab):
    """Promise 4: a datagram not signed by the controller, or signed and
    replayed, is never dispatched; every kind is counted on every node."""
    with lab.experiment() as exp:
        stolen = hostile.register_as(lab.address, lab.certs, "n30")  # a compromised node
        hostile.forget(exp, "n30")  # (or every command would wait for it)
        tap = GroupTap(lab)
        try:
            pending = exp.submit_command("RECORDER", "rogue", "RECORD", {"i": 1})
            real = tap.capture(lambda d: peek_datagram_header(d)[0] == KIND_MESSAGES
                               and b'"group":"rogue"' in d)
            assert pending.result().ok
            _, epoch, serial, _ = peek_datagram_header(real)
            assert epoch == stolen.epoch
            rng = random.Random(13)
            rogue = {kind: [hostile.fuzzed(kind, rng, stolen, epoch) for _ in range(EACH)]
                     for kind in ("random", "truncated", "version", "kind", "mac")}
            rogue["oversized"] = [hostile.fuzzed("oversized", rng, stolen, epoch)
                                  for _ in range(3)]
            # A compromised node's best: the right HMAC, the next serial, a command.
            rogue["signature"] = [hostile.seal(stolen.hmac_key, KIND_MESSAGES, epoch,
                                               serial + 1, 1, hostile.forged_command(666))
                                  for _ in range(EACH)]
            rogue["cut"] = [real[:len(real) - 1 - i] for i in range(EACH)]
            other_epoch = real[:6] + (epoch + 1).to_bytes(8, "big") + real[14:]
            rogue["epoch, HMAC as it was"] = [other_epoch] * EACH
            rogue["epoch, HMAC made again"] = [
                hostile.reseal(stolen.hmac_key, real, epoch + 1)] * EACH
            # ... or a tagged one: its own tag right, the others' guessed.
            rogue["tag"] = [hostile.fuzzed("tag", rng, stolen, epoch) for _ in range(EACH)]
            rogue["replay"] = [real] * EACH
            inject(lab, tap, [d for datagrams in rogue.values() for d in datagrams])
            assert exp.command("RECORDER", "rogue", "RECORD", {"i": 2}).ok
            assert exp.command("RECORDER", "rogue", "RECORD", {"i": 3}).ok
            # Counters ride along with a REPORT when a drop is new (`dispatched`
            # alone would wait a minute): one more, so the last ones come fresh.
            inject(lab, tap, [hostile.fuzzed("truncated", rng, stolen, epoch)])
        finally:
            tap.close()
    for node in NODES:
        assert recorded_numbers(lab, node, "rogue") == [1, 2, 3], node
        assert not (lab.workdir / "nodes" / node / "RECORDER-pwned").exists(), node
    expected = {
        "dropped_magic": EACH, "dropped_truncated": EACH + 1, "dropped_version": EACH,
        "dropped_kind": EACH, "dropped_oversized": 3,
        "dropped_mac": 3 * EACH,        # bad HMAC, cut short, another epoch as it was
        "dropped_signature": EACH,      # the compromised node's signature
        "dropped_tag": 2 * EACH,        # its tags, another epoch made again (real is tagged)
        "dispatched": 4,                # the SET and the three real RECORDs
    }

    def counted(stats: dict) -> dict:
        return {name: {key: s.get(key, 0) for key in expected} for name, s in stats.items()}

    # The nodes' counters reach the controller within their stats interval.
    stats = eventually(lambda: node_stats(lab),
                       lambda st: counted(st) == {n: expected for n in NODES}
                       and all(s.get("duplicates", 0) >= EACH for s in st.values()),
                       timeout=30)
    assert counted(stats) == {n: expected for n in NODES}, stats
    for name, s in stats.items():
        assert s.get("duplicates", 0) >= EACH, (name, s)  # the replays
