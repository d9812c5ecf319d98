"""An independent counter of a flow inside a testbed node: an nftables rule.

What SEER's numbers are checked against (the stats tests and `python -m
bench stats`): a ``counter`` rule in the node's own namespace on the input
or output hook, matching the flow's UDP port -- the kernel's netfilter
counts it, not the interface counters SEER's pollers read.  Netfilter sees
IP packets: its bytes are at the IP layer; :meth:`Counter.link_bytes` adds
the 14-byte Ethernet header per packet to compare with the interface
counters, which count whole frames (without preamble and FCS).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from seer.testbed.netns import in_namespace, run

TABLE = "seer_count"
ETHERNET_HEADER = 14


@dataclass(frozen=True)
class Reading:
    time: float
    packets: int
    bytes: int

    @property
    def link_bytes(self) -> int:
        """The same packets counted as the interface does: with their Ethernet header."""
        return self.bytes + ETHERNET_HEADER * self.packets


class Counter:
    """Counts UDP packets to ``port`` arriving at (``hook="input"``) or leaving
    (``"output"``, on ``interface``) namespace ``ns``; remove() takes it away."""

    def __init__(self, ns: str, port: int, hook: str = "input", interface: str = "") -> None:
        self.ns = ns
        match = f'oifname "{interface}" ' if hook == "output" and interface else ""
        self._nft(["add", "table", "inet", TABLE])
        self._nft(["add", "chain", "inet", TABLE, hook,
                   f"{{ type filter hook {hook} priority -300; }}"])
        self._nft(["add", "rule", "inet", TABLE, hook, *match.split(), "udp", "dport", str(port),
                   "counter"])

    def _nft(self, args: list[str]) -> str:
        return run(in_namespace(self.ns, ["nft", *args]))

    def read(self) -> Reading:
        """The counter now, with the time (the middle of the read)."""
        before = time.time()
        listing = json.loads(self._nft(["-j", "list", "table", "inet", TABLE]))
        after = time.time()
        for item in listing.get("nftables", []):
            for expression in (item.get("rule") or {}).get("expr", []):
                if "counter" in expression:
                    counter = expression["counter"]
                    return Reading((before + after) / 2, counter["packets"], counter["bytes"])
        raise RuntimeError(f"no counter in table {TABLE} of {self.ns}")

    def remove(self) -> None:
        run(in_namespace(self.ns, ["nft", "delete", "table", "inet", TABLE]), check=False)

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def bits_per_second(first: Reading, last: Reading, link_layer: bool = True) -> float:
    """The rate between two readings, at the link layer (default) or the IP layer."""
    size = (last.link_bytes - first.link_bytes) if link_layer else (last.bytes - first.bytes)
    return size * 8 / (last.time - first.time)
