"""Per-node tags: a datagram every node can check with one HMAC, that no
node can forge for another.

An RSA signature lets every node check that its controller made a datagram,
but checking one costs a node as much CPU as all the rest of a command
(tens of microseconds, several times that when a hundred daemons share the
caches).  A tagged datagram carries instead one short HMAC per node, each
under a key only that node and the controller hold (handed over the node's
mutual-TLS link in WELCOME): a node checks its own tag only, and a node
that was compromised knows no other node's key, so it still cannot command
the others -- the promise the signature made.  The table grows by TAG_LEN
bytes a node; past TAG_LIMIT nodes (or when the table would not fit) the
controller signs with RSA instead.  docs/PROTOCOL.md has the layout.

Sans-IO and standard library only, like the rest of seer.protocol.
"""

from __future__ import annotations

import hmac
import os
import struct

from seer.protocol.mac import KeyedMac

#: Bytes of each node's tag: a truncated HMAC-SHA256 (64 bits; a forger's
#: chance per try is 2**-64, and a wrong tag is only ever dropped).
TAG_LEN = 8
#: Most nodes a datagram carries tags for; beyond, it is RSA-signed.
TAG_LIMIT = 256
#: The table's trailer: how many slots it has (u16 big-endian).
TAG_COUNT = struct.Struct(">H")
KEY_LEN = 32


class TagTable:
    """The controller's side: one slot and key per node, for the controller's
    lifetime (a node that reconnects keeps both, so datagrams sealed before
    it reconnected still check)."""

    def __init__(self, limit: int = TAG_LIMIT) -> None:
        self.limit = limit
        self._slots: dict[str, int] = {}
        self._keys: list[bytes] = []
        self._macs: list[KeyedMac] = []

    def __len__(self) -> int:
        return len(self._keys)

    def admit(self, node: str) -> dict[str, object]:
        """``node``'s slot and key, as WELCOME's ``tag`` carries them."""
        slot = self._slots.get(node)
        if slot is None:
            slot = self._slots[node] = len(self._keys)
            self._keys.append(os.urandom(KEY_LEN))
            self._macs.append(KeyedMac(self._keys[slot]))
        return {"slot": slot, "key": self._keys[slot].hex()}

    def usable(self, content_size: int, limit_size: int) -> bool:
        """Whether tags (rather than a signature) should seal a datagram whose
        header and body take ``content_size`` bytes, under ``limit_size``."""
        slots = len(self._macs)
        return 0 < slots <= self.limit and \
            content_size + slots * TAG_LEN + TAG_COUNT.size <= limit_size

    def trailer(self, content: bytes) -> bytes:
        """Every node's tag of ``content``, in slot order, then the count."""
        return b"".join([m.digest(content)[:TAG_LEN] for m in self._macs]) + \
            TAG_COUNT.pack(len(self._macs))


class NodeTag:
    """A node's side: its slot and key."""

    __slots__ = ("slot", "_mac")

    def __init__(self, slot: int, key: bytes) -> None:
        self.slot = slot
        self._mac = KeyedMac(key)

    @classmethod
    def from_welcome(cls, given: object) -> NodeTag | None:
        """The tag WELCOME's ``tag`` describes, or None if there is none usable."""
        if not isinstance(given, dict):
            return None
        try:
            slot, key = int(given["slot"]), bytes.fromhex(given["key"])
        except (TypeError, KeyError, ValueError):
            return None
        if not 0 <= slot < 0xFFFF or len(key) < 16:
            return None
        return cls(slot, key)

    def matches(self, content: bytes, table: bytes, slots: int) -> bool:
        """Whether ``table`` (``slots`` tags) holds this node's tag of ``content``."""
        if self.slot >= slots:
            return False
        at = self.slot * TAG_LEN
        return hmac.compare_digest(self._mac.digest(content)[:TAG_LEN], table[at:at + TAG_LEN])
