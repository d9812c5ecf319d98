"""SEER wire protocol, version 1: the one codec every SEER process uses.

This module is sans-IO: it turns bytes into typed values and back, and knows
nothing of sockets, reactors or time.  docs/PROTOCOL.md is the normative
description; the layouts are repeated here so the code can be read alone.

Stream frames (every TLS connection, both directions)::

    length   u32 big-endian   number of bytes that follow
    version  u8               PROTOCOL_VERSION
    json_len u32 big-endian   length of the JSON header
    json     json_len bytes   UTF-8 JSON object with a string "type"
    blob     the rest         raw bytes (file contents, a repaired datagram)

Multicast datagrams (controller to every node)::

    magic    4 bytes          b"SEER"
    version  u8               PROTOCOL_VERSION
    kind     u8               1 = MESSAGES, 2 = PING
    epoch    u64 big-endian   the controller's serial sequence
    serial   u64 big-endian   first serial carried (MESSAGES) or current
                              serial (PING)
    count    u16 big-endian   messages carried (MESSAGES) or 0 (PING)
    body     UTF-8 JSON       MESSAGES: array of `count` message objects,
                              serials serial .. serial+count-1 in order;
                              PING: an object
    sig      256 bytes        RSASSA-PSS signature (RSA-2048, SHA-256,
                              MGF1-SHA-256, 32-byte salt) over everything
                              before it
    mac      32 bytes         HMAC-SHA256 over everything before it

The HMAC key is shared by the experiment's nodes and keeps outsiders out
cheaply; the RSA signature is made with a key only the controller holds,
so a compromised node (which knows the HMAC key) still cannot command the
others.  Both keys reach nodes only over mutual TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
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

# RSA rather than elliptic curves: one controller signs each datagram once
# and every node verifies it, and RSA verification is several times cheaper
# than ECDSA's or Ed25519's (signing costs more; see docs/PERFORMANCE.md).
RSA_BITS = 2048
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_SHA256 = hashes.SHA256()

PROTOCOL_VERSION = 1

#: Largest stream frame accepted (bytes after the length field).  Files larger
#: than this travel in several frames.
MAX_FRAME = 16 * 1024 * 1024

#: Largest datagram we send or accept: under the 65,507-byte IPv4 UDP limit.
MAX_DATAGRAM = 65000

MAGIC = b"SEER"
KIND_MESSAGES = 1
KIND_PING = 2
DATAGRAM_KINDS = {KIND_MESSAGES: "MESSAGES", KIND_PING: "PING"}

_FRAME_LENGTH = struct.Struct(">I")
_FRAME_PREFIX = struct.Struct(">BI")
_DATAGRAM_HEADER = struct.Struct(">4sBBQQH")
SIG_LEN = RSA_BITS // 8
MAC_LEN = 32
DATAGRAM_OVERHEAD = _DATAGRAM_HEADER.size + SIG_LEN + MAC_LEN

#: The message types a datagram may carry to the experiment.
EXPERIMENT_MESSAGE_TYPES = frozenset(
    {"COMMAND", "SET", "EXECUTE", "GET", "PUT"}
)

_MAX_SERIAL = 2**64 - 1


class WireError(Exception):
    """Bytes that are not a valid SEER frame or datagram.

    ``reason`` is a short stable word for counters (``truncated``, ``magic``,
    ``version``, ``kind``, ``oversized``, ``mac``, ``signature``, ``body``);
    the message says what exactly was wrong.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 overflows to infinity, which JSON cannot carry
        raise ValueError(f"{text} is out of range")
    return value


def _decode_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant,
                          parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WireError("body", f"{what} is not UTF-8 JSON ({e})") from None


def dumps(value: Any) -> bytes:
    """Compact JSON, the only JSON encoding SEER puts on the wire."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


# --------------------------------------------------------------------------
# Stream frames


@dataclass(frozen=True)
class Frame:
    """One stream frame: a JSON header object and an optional binary blob."""

    header: dict[str, Any]
    blob: bytes = b""

    @property
    def type(self) -> str:
        return self.header["type"]

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)


def encode_frame(header: dict[str, Any], blob: bytes = b"") -> bytes:
    """Encode one frame.  ``header`` must carry a string ``type``."""
    if not isinstance(header.get("type"), str):
        raise ValueError("a frame header needs a string 'type'")
    body = dumps(header)
    length = _FRAME_PREFIX.size + len(body) + len(blob)
    if length > MAX_FRAME:
        raise ValueError(
            f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit"
        )
    return b"".join(
        (
            _FRAME_LENGTH.pack(length),
            _FRAME_PREFIX.pack(PROTOCOL_VERSION, len(body)),
            body,
            blob,
        )
    )


def decode_frame_body(body: bytes) -> Frame:
    """Decode the bytes after a frame's length field."""
    if len(body) < _FRAME_PREFIX.size:
        raise WireError("truncated", f"frame body of {len(body)} bytes")
    version, json_len = _FRAME_PREFIX.unpack_from(body)
    if version != PROTOCOL_VERSION:
        raise WireError(
            "version",
            f"frame version {version}, this SEER speaks {PROTOCOL_VERSION}",
        )
    end = _FRAME_PREFIX.size + json_len
    if end > len(body):
        raise WireError(
            "truncated", f"JSON length {json_len} exceeds the frame"
        )
    header = _decode_json(body[_FRAME_PREFIX.size : end], "frame header")
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise WireError("body", "frame header is not an object with a 'type'")
    return Frame(header, body[end:])


class FrameDecoder:
    """Incremental decoder for a byte stream of frames.

    After it raises :class:`WireError` the stream is out of step and the
    connection must be closed; further calls raise the same error.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self._error: WireError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames = []
        offset = 0
        buffer = self._buffer
        try:
            while len(buffer) - offset >= _FRAME_LENGTH.size:
                (length,) = _FRAME_LENGTH.unpack_from(buffer, offset)
                if length > self._max_frame:
                    raise WireError(
                        "oversized",
                        f"frame of {length} bytes, limit {self._max_frame}",
                    )
                start = offset + _FRAME_LENGTH.size
                if len(buffer) - start < length:
                    break
                frames.append(decode_frame_body(bytes(buffer[start : start + length])))
                offset = start + length
        except WireError as e:
            self._error = e
            raise
        finally:
            del self._buffer[:offset]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)


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
          payload: bytes) -> bytes:
    signed = (
        _DATAGRAM_HEADER.pack(MAGIC, PROTOCOL_VERSION, kind, epoch, serial, count)
        + payload
    )
    size = len(signed) + SIG_LEN + MAC_LEN
    if size > MAX_DATAGRAM:
        raise ValueError(f"datagram of {size} bytes exceeds the {MAX_DATAGRAM}-byte limit")
    signed += keys.sign(signed)
    return signed + hmac.digest(keys.hmac_key, signed, hashlib.sha256)


def batch_payload(encoded_messages: list[bytes]) -> bytes:
    """The MESSAGES body for messages already encoded with :func:`dumps`."""
    return b"[" + b",".join(encoded_messages) + b"]"


def batch_size(encoded_messages: list[bytes]) -> int:
    """Bytes a MESSAGES datagram carrying these messages would take."""
    return DATAGRAM_OVERHEAD + 1 + sum(len(m) + 1 for m in encoded_messages)


def encode_batch(keys: SigningKeys, epoch: int, serial: int, count: int,
                 payload: bytes) -> bytes:
    """Seal a MESSAGES datagram whose body (``count`` messages) is encoded."""
    _check_serial(epoch)
    _check_serial(serial)
    if not 0 < count <= 0xFFFF:
        raise ValueError(f"a MESSAGES datagram carries 1..65535 messages, not {count}")
    _check_serial(serial + count - 1)
    return _seal(keys, KIND_MESSAGES, epoch, serial, count, payload)


def encode_datagram(
    keys: SigningKeys,
    kind: int,
    epoch: int,
    serial: int,
    messages: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
) -> bytes:
    """Sign and encode one datagram; raises ValueError if it would not fit."""
    if kind == KIND_MESSAGES:
        return encode_batch(
            keys, epoch, serial, len(messages), batch_payload([dumps(m) for m in messages])
        )
    if kind == KIND_PING:
        _check_serial(epoch)
        _check_serial(serial)
        return _seal(keys, KIND_PING, epoch, serial, 0, dumps(body or {}))
    raise ValueError(f"unknown datagram kind {kind}")


def peek_datagram_header(data: bytes) -> tuple[int, int, int, int]:
    """(kind, epoch, serial, count) of a datagram, unverified."""
    if len(data) < DATAGRAM_OVERHEAD:
        raise WireError("truncated", f"datagram of {len(data)} bytes")
    magic, version, kind, epoch, serial, count = _DATAGRAM_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireError("magic", f"datagram starts with {magic!r}")
    if version != PROTOCOL_VERSION:
        raise WireError(
            "version",
            f"datagram version {version}, this SEER speaks {PROTOCOL_VERSION}",
        )
    if kind not in DATAGRAM_KINDS:
        raise WireError("kind", f"unknown datagram kind {kind}")
    return kind, epoch, serial, count


def decode_datagram(keys: VerifyingKeys, data: bytes) -> Datagram:
    """Verify and decode one datagram.

    Raises :class:`WireError` for anything that is not a datagram signed by
    this experiment's controller: garbage, truncation, wrong version, bad
    HMAC (forged or another experiment's), bad signature, malformed body.
    """
    if len(data) > MAX_DATAGRAM:
        raise WireError("oversized", f"datagram of {len(data)} bytes")
    kind, epoch, serial, count = peek_datagram_header(data)
    signed, mac = data[:-MAC_LEN], data[-MAC_LEN:]
    if not hmac.compare_digest(
        hmac.digest(keys.hmac_key, signed, hashlib.sha256), mac
    ):
        raise WireError("mac", "HMAC does not match this experiment's key")
    content, sig = signed[:-SIG_LEN], signed[-SIG_LEN:]
    keys.check_signature(sig, content)
    body = _decode_json(content[_DATAGRAM_HEADER.size :], "datagram body")
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
        if not isinstance(message, dict) or message.get("type") not in (
            EXPERIMENT_MESSAGE_TYPES
        ):
            raise WireError("body", "a message is not an object of a known type")
    return Datagram(kind, epoch, serial, messages=tuple(body))
