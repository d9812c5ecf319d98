"""Helpers for end-to-end tests: real processes, real multicast on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import TEST_AGENTS
from seer.client.polling import poll
from seer.localrun import LocalExperiment


@contextmanager
def running_testbed(state_dir: Path, topology_file: Path, name: str,
                    **options) -> Iterator[dict]:
    """A namespace testbed of ``topology_file`` for a module's tests, its
    state in ``state_dir``; down (and SEER_TESTBED_DIR restored) after.
    ``options`` go to runner.up (control_loss, daemon_args ...)."""
    from seer.testbed import runner
    from seer.testbed.topology import load_topology

    old = os.environ.get("SEER_TESTBED_DIR")
    os.environ["SEER_TESTBED_DIR"] = str(state_dir)
    topology = load_topology(topology_file, name)
    testbed = runner.up(topology, **options)
    try:
        yield testbed
    finally:
        runner.down(topology.name)
        if old is None:
            os.environ.pop("SEER_TESTBED_DIR", None)
        else:
            os.environ["SEER_TESTBED_DIR"] = old


def lab_for(tmp_path: Path, certs_dir: Path, n: int, **options) -> LocalExperiment:
    options.setdefault("common_daemon_args", ["--agent-dirs", str(TEST_AGENTS)])
    return LocalExperiment(tmp_path, [f"n{i}" for i in range(1, n + 1)], certs=certs_dir, **options)


def records(lab: LocalExperiment, node: str, group: str = "g") -> list[dict]:
    path = lab.workdir / "nodes" / node / f"RECORDER-{group}" / "records.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def recorded_numbers(lab: LocalExperiment, node: str, group: str = "g") -> list:
    return [r["i"] for r in records(lab, node, group) if "i" in r]


class GroupTap:
    """The test's own member of the experiment's group on 127.0.0.1, to
    capture real datagrams and to inject forged or replayed ones (TTL 1)."""

    def __init__(self, lab: LocalExperiment) -> None:
        self.address = (lab.group, lab.group_port)
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.rx.bind(self.address)
        membership = struct.pack("4s4s", socket.inet_aton(lab.group), socket.inet_aton("127.0.0.1"))
        self.rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        self.rx.settimeout(5)
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))

    def capture(self, predicate, timeout: float = 10.0) -> bytes:
        """The first datagram ``predicate`` accepts; AssertionError after
        ``timeout`` s (PINGs keep coming: a bare loop would wait for ever)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = self.rx.recvfrom(65535)
            except TimeoutError:
                continue
            if predicate(data):
                return data
        raise AssertionError(f"no datagram the test wanted within {timeout:g} s")

    def inject(self, data: bytes) -> None:
        self.tx.sendto(data, self.address)

    def close(self) -> None:
        self.rx.close()
        self.tx.close()


def node_stats(lab: LocalExperiment) -> dict[str, dict]:
    with lab.experiment() as exp:
        return {n["name"]: n.get("stats") or {} for n in exp.nodes()}


def eventually(read, holds, timeout: float = 15.0, interval: float = 0.5):
    """Read until ``holds(value)`` (nodes send their counters every 5 s at
    most); returns the last value read."""
    return poll(read, holds, timeout=timeout, interval=interval)[0]


#: The nftables table partitioned() adds in a node's namespace only.
PARTITION_TABLE = "seerpartition"


@contextmanager
def partitioned(namespace: str) -> Iterator[None]:
    """Every packet in and out of ``namespace`` dropped (a testbed node's,
    made by the test's testbed): nothing closes its TCP connections, as when
    a switch or a firewall in between fails.  Healed on leaving."""
    from seer.testbed.netns import in_namespace, run

    run(in_namespace(namespace, ["nft", "add", "table", "inet", PARTITION_TABLE]))
    try:
        for chain, hook in (("in", "input"), ("out", "output")):
            run(in_namespace(namespace, [
                "nft", "add", "chain", "inet", PARTITION_TABLE, chain,
                f"{{ type filter hook {hook} priority -300; policy drop; }}"]))
        yield
    finally:
        run(in_namespace(namespace, ["nft", "delete", "table", "inet", PARTITION_TABLE]),
            check=False)
