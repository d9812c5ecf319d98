"""SEER's signed multicast datagrams (controller to every node).

Sans-IO, like :mod:`seer.protocol.wire` (whose JSON, version and
:class:`WireError` it shares); docs/PROTOCOL.md is normative::

    magic    4 bytes          b"SEER"
    version  u8               PROTOCOL_VERSION
    kind     u8               1 = MESSAGES, 2 = PING; + 0x80 = tagged
    epoch    u64 big-endian   the controller's serial sequence
    serial   u64 big-endian   first serial carried (MESSAGES) or current
                              serial (PING)
    count    u16 big-endian   messages carried (MESSAGES) or 0 (PING)
    body     UTF-8 JSON       MESSAGES: array of `count` message objects,
                              serials serial .. serial+count-1 in order;
                              PING: an object
    sig      256 bytes        RSASSA-PSS signature (RSA-2048, SHA-256,
                              MGF1-SHA-256, 32-byte salt) over everything
                              before it -- or, tagged:
    tags     slots x 8 bytes  each node's tag: HMAC-SHA256 under that node's
                              key over header and body, first 8 bytes
    slots    u16 big-endian   how many tags
    mac      32 bytes         HMAC-SHA256 over everything before it

The HMAC key is shared by the experiment's nodes and keeps outsiders out
cheaply; the RSA signature is made with a key only the controller holds,
and each tag with a key only its node and the controller hold
(:mod:`seer.protocol.tags`), so a compromised node (which knows the HMAC
key) still cannot command the others.  Every key reaches nodes only over
mutual TLS; a datagram that comes over that TLS link (a REPAIR) is the
controller's by the link, and only its HMAC is checked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from seer.protocol.mac import KeyedMac
from seer.protocol.messages import EXPERIMENT_MESSAGE_TYPES
from seer.protocol.tags import TAG_COUNT, TAG_LEN, NodeTag, TagTable
from seer.protocol.wire import PROTOCOL_VERSION, WireError, decode_json, dumps, version_mismatch

# RSA rather than elliptic curves: one controller signs each datagram once
# and every node verifies it, and RSA verification is several times cheaper
# than ECDSA's or Ed25519's (signing costs more; see docs/PERFORMANCE.md).
RSA_BITS = 2048
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_SHA256 = hashes.SHA256()

#: Largest datagram we send or accept: under the 65,507-byte IPv4 UDP limit.
MAX_DATAGRAM = 65000

MAGIC = b"SEER"
KIND_MESSAGES = 1
KIND_PING = 2
DATAGRAM_KINDS = {KIND_MESSAGES: "MESSAGES", KIND_PING: "PING"}
#: Added to the kind: sealed by per-node tags instead of the RSA signature.
TAGGED = 0x80

_DATAGRAM_HEADER = struct.Struct(">4sBBQQH")
SIG_LEN = RSA_BITS // 8
MAC_LEN = 32
DATAGRAM_OVERHEAD = _DATAGRAM_HEADER.size + SIG_LEN + MAC_LEN
#: The least a tagged datagram takes (no tags, no body).
MIN_DATAGRAM = _DATAGRAM_HEADER.size + TAG_COUNT.size + MAC_LEN


_MAX_SERIAL = 2**64 - 1


# --------------------------------------------------------------------------
# Multicast datagrams


@dataclass(frozen=True)
class Datagram:
    """A verified multicast datagram.

    For MESSAGES, ``messages[i]`` has serial ``serial + i``.  For PING,
    ``serial`` is the controller's current serial and ``body`` the ping's
    object.
    """

    kind: int
    epoch: int
    serial: int
    messages: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def last_serial(self) -> int:
        return self.serial + len(self.messages) - 1

    def numbered(self) -> list[tuple[int, dict[str, Any]]]:
        return [(self.serial + i, m) for i, m in enumerate(self.messages)]


@dataclass(frozen=True)
class VerifyingKeys:
    """What a node needs to check datagrams: the HMAC key and the public key."""

    hmac_key: bytes
    public_key: rsa.RSAPublicKey
    #: This node's tag key and slot (WELCOME's ``tag``), for tagged datagrams.
    tag: NodeTag | None = field(default=None, repr=False, compare=False)
    mac: KeyedMac = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", KeyedMac(self.hmac_key))

    def with_tag(self, tag: NodeTag | None) -> VerifyingKeys:
        return VerifyingKeys(self.hmac_key, self.public_key, tag)

    def check_tag(self, content: bytes, table: bytes, slots: int) -> None:
        """Raise WireError unless ``table`` holds this node's tag of ``content``."""
        if self.tag is None or not self.tag.matches(content, table, slots):
            raise WireError("tag", "no tag of this node's key from this experiment's "
                                   "controller")

    def to_json(self) -> dict[str, str]:
        return {
            "hmac_key": self.hmac_key.hex(),
            "sign_key": self.public_key.public_bytes(
                Encoding.DER, PublicFormat.SubjectPublicKeyInfo
            ).hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerifyingKeys:
        try:
            hmac_key = bytes.fromhex(data["hmac_key"])
            public = load_der_public_key(bytes.fromhex(data["sign_key"]))
        except (KeyError, TypeError, ValueError) as e:
            raise WireError("body", f"bad datagram keys ({e})") from None
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size != RSA_BITS:
            raise WireError("body", f"datagram signing key is not a {RSA_BITS}-bit RSA key")
        if len(hmac_key) < 16:
            raise WireError("body", "HMAC key shorter than 16 bytes")
        return cls(hmac_key, public)

    def check_signature(self, sig: bytes, content: bytes) -> None:
        """Raise WireError unless ``sig`` is the controller's signature of ``content``."""
        try:
            self.public_key.verify(sig, content, _PSS, _SHA256)
        except InvalidSignature:
            raise WireError(
                "signature", "not signed by this experiment's controller"
            ) from None


@dataclass(frozen=True)
class SigningKeys:
    """The controller's datagram keys: HMAC key and RSA private key."""

    hmac_key: bytes
    private_key: rsa.RSAPrivateKey
    mac: KeyedMac = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", KeyedMac(self.hmac_key))

    @classmethod
    def generate(cls) -> SigningKeys:
        import os

        return cls(os.urandom(32), rsa.generate_private_key(65537, RSA_BITS))

    def sign(self, data: bytes) -> bytes:
        """The RSASSA-PSS signature (SHA-256, MGF1-SHA-256, 32-byte salt)."""
        return self.private_key.sign(data, _PSS, _SHA256)

    def verifying(self) -> VerifyingKeys:
        return VerifyingKeys(self.hmac_key, self.private_key.public_key())


def _check_serial(serial: int) -> None:
    if not 0 <= serial <= _MAX_SERIAL:
        raise ValueError(f"serial {serial} out of range")


def _seal(keys: SigningKeys, kind: int, epoch: int, serial: int, count: int,
          payload: bytes, tags: TagTable | None = None) -> bytes:
    """The datagram, tagged if ``tags`` has room for every node, else signed."""
    size = _DATAGRAM_HEADER.size + len(payload) + MAC_LEN
    if tags is not None and tags.usable(size - MAC_LEN, MAX_DATAGRAM - MAC_LEN):
        content = _DATAGRAM_HEADER.pack(MAGIC, PROTOCOL_VERSION, kind | TAGGED, epoch,
                                        serial, count) + payload
        sealed = content + tags.trailer(content)
        return sealed + keys.mac.digest(sealed)
    if size + SIG_LEN > MAX_DATAGRAM:
        raise ValueError(f"datagram of {size + SIG_LEN} bytes exceeds the "
                         f"{MAX_DATAGRAM}-byte limit")
    signed = _DATAGRAM_HEADER.pack(MAGIC, PROTOCOL_VERSION, kind, epoch, serial, count) + \
        payload
    signed += keys.sign(signed)
    return signed + keys.mac.digest(signed)


def batch_payload(encoded_messages: list[bytes]) -> bytes:
    """The MESSAGES body for messages already encoded with :func:`dumps`."""
    return b"[" + b",".join(encoded_messages) + b"]"


def batch_size(encoded_messages: list[bytes]) -> int:
    """Bytes a MESSAGES datagram carrying these messages would take."""
    return DATAGRAM_OVERHEAD + 1 + sum(len(m) + 1 for m in encoded_messages)


def encode_batch(keys: SigningKeys, epoch: int, serial: int, count: int,
                 payload: bytes, tags: TagTable | None = None) -> bytes:
    """Seal a MESSAGES datagram whose body (``count`` messages) is encoded:
    tagged for every node of ``tags`` if there is room, else signed."""
    _check_serial(epoch)
    _check_serial(serial)
    if not 0 < count <= 0xFFFF:
        raise ValueError(f"a MESSAGES datagram carries 1..65535 messages, not {count}")
    _check_serial(serial + count - 1)
    return _seal(keys, KIND_MESSAGES, epoch, serial, count, payload, tags)


def encode_datagram(
    keys: SigningKeys,
    kind: int,
    epoch: int,
    serial: int,
    messages: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    tags: TagTable | None = None,
) -> bytes:
    """Seal and encode one datagram; raises ValueError if it would not fit."""
    if kind == KIND_MESSAGES:
        return encode_batch(
            keys, epoch, serial, len(messages), batch_payload([dumps(m) for m in messages]),
            tags)
    if kind == KIND_PING:
        _check_serial(epoch)
        _check_serial(serial)
        return _seal(keys, KIND_PING, epoch, serial, 0, dumps(body or {}), tags)
    raise ValueError(f"unknown datagram kind {kind}")


def peek_datagram_header(data: bytes) -> tuple[int, int, int, int]:
    """(kind, epoch, serial, count) of a datagram, unverified (kind without TAGGED)."""
    kind, epoch, serial, count = _header(data)
    return kind & ~TAGGED, epoch, serial, count


def _header(data: bytes) -> tuple[int, int, int, int]:
    if len(data) < MIN_DATAGRAM:
        raise WireError("truncated", f"datagram of {len(data)} bytes")
    magic, version, kind, epoch, serial, count = _DATAGRAM_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireError("magic", f"datagram starts with {magic!r}")
    if version != PROTOCOL_VERSION:
        raise WireError(
            "version",
            version_mismatch("datagram", version),
        )
    if kind & ~TAGGED not in DATAGRAM_KINDS:
        raise WireError("kind", f"unknown datagram kind {kind}")
    return kind, epoch, serial, count


def _seal_of(data: bytes, kind: int) -> tuple[bytes, bytes, int]:
    """(content, seal, slots) of a datagram of ``kind`` (TAGGED included):
    content is header and body; seal the signature (slots -1) or the tags."""
    end = len(data) - MAC_LEN
    if kind & TAGGED:
        (slots,) = TAG_COUNT.unpack_from(data, end - TAG_COUNT.size)
        start = end - TAG_COUNT.size - slots * TAG_LEN
        if start < _DATAGRAM_HEADER.size:
            raise WireError("truncated", f"datagram of {len(data)} bytes for {slots} tags")
        return data[:start], data[start:end - TAG_COUNT.size], slots
    if len(data) < DATAGRAM_OVERHEAD:
        raise WireError("truncated", f"datagram of {len(data)} bytes")
    return data[:end - SIG_LEN], data[end - SIG_LEN:end], -1


def peek_ping(data: bytes) -> dict[str, Any]:
    """The body of a PING, *unverified*: what a daemon that has no keys yet
    reads to learn where the controller listens (it then trusts that address
    only once the TLS handshake shows the experiment's controller certificate)."""
    kind, count, body_bytes = _unverified_body(data)
    if kind != KIND_PING or count != 0 or len(data) > MAX_DATAGRAM:
        raise WireError("kind", "not a PING")
    body = decode_json(body_bytes, "PING body")
    if not isinstance(body, dict):
        raise WireError("body", "PING body must be an object")
    return body


def peek_messages(data: bytes) -> list[Any]:
    """The messages a MESSAGES datagram carries, *unverified* ([] for a PING
    or anything unreadable): for taps and tests that watch the group."""
    try:
        kind, _, body_bytes = _unverified_body(data)
        body = decode_json(body_bytes, "datagram body")
    except WireError:
        return []
    return body if kind == KIND_MESSAGES and isinstance(body, list) else []


def _unverified_body(data: bytes) -> tuple[int, int, bytes]:
    """(kind without TAGGED, count, the body's bytes) of a datagram, unverified."""
    kind, _, _, count = _header(data)
    content, _, _ = _seal_of(data, kind)
    return kind & ~TAGGED, count, content[_DATAGRAM_HEADER.size:]


def decode_datagram(keys: VerifyingKeys, data: bytes, by_tls: bool = False) -> Datagram:
    """Verify and decode one datagram.

    Raises :class:`WireError` for anything that is not a datagram sealed by
    this experiment's controller: garbage, truncation, wrong version, bad
    HMAC (forged or another experiment's), bad signature or tag, malformed
    body.  ``by_tls``: it came over the mutual-TLS link from the controller
    (a REPAIR), which says who made it -- signature and tag are not checked
    (a tag of a node that joined later would not be there).
    """
    if len(data) > MAX_DATAGRAM:
        raise WireError("oversized", f"datagram of {len(data)} bytes")
    kind, epoch, serial, count = _header(data)
    if not keys.mac.matches(data[:-MAC_LEN], data[-MAC_LEN:]):
        raise WireError("mac", "HMAC does not match this experiment's key")
    # The layout after the body is read only once the HMAC says who made it.
    content, seal, slots = _seal_of(data, kind)
    kind &= ~TAGGED
    if not by_tls:
        if slots >= 0:
            keys.check_tag(content, seal, slots)
        else:
            keys.check_signature(seal, content)
    body = decode_json(content[_DATAGRAM_HEADER.size :], "datagram body")
    if kind == KIND_PING:
        if count != 0 or not isinstance(body, dict):
            raise WireError("body", "PING body must be an object, count 0")
        return Datagram(kind, epoch, serial, body=body)
    if (
        not isinstance(body, list)
        or count == 0
        or len(body) != count
        or serial + count - 1 > _MAX_SERIAL
    ):
        raise WireError("body", f"MESSAGES body must be a list of {count} messages")
    for message in body:
        # A type that is not a string may not even be hashable ([], {}): test
        # it before the set lookup, which would raise TypeError instead.
        kind_name = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind_name, str) or kind_name not in EXPERIMENT_MESSAGE_TYPES:
            raise WireError("body", "a message is not an object of a known type")
    return Datagram(kind, epoch, serial, messages=tuple(body))
