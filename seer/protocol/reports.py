"""Report datagrams: a node's acknowledgement and outcomes, by UDP to the controller.

A REPORT frame over TLS costs the controller a TLS record, Twisted's TLS
machinery and a frame decode, a hundred times for a command to a hundred
nodes; a small UDP datagram costs a fraction of that, on the node too.  So
the hot part of a report -- the cumulative acknowledgement and the
outcomes -- travels as one of these when it fits in REPORT_MAX bytes;
everything else (events, runs that ended, counters, snapshots) stays on
TLS, and so does a report the controller did not confirm (see
docs/PROTOCOL.md, "Report datagrams")::

    magic    4 bytes          b"SEER"
    version  u8               PROTOCOL_VERSION
    kind     u8               3 = REPORT
    session  u64 big-endian   the report session the node's WELCOME gave it
    seq      u64 big-endian   1, 2, 3 ... within the session
    body     UTF-8 JSON       {"ack": N, "outcomes": [[serial, status, error, result, at], ...]}
    mac      32 bytes         HMAC-SHA256 under the node's own report key

The key is the node's alone -- made for it at each registration and sent
only in its WELCOME over mutual TLS -- so no node can report for another,
as it could under the experiment's shared HMAC key.  Sans-IO, like the
rest of seer.protocol.
"""

from __future__ import annotations

import struct
from typing import Any

from seer.protocol.mac import KeyedMac
from seer.protocol.wire import PROTOCOL_VERSION, WireError, decode_json, dumps, version_mismatch

MAGIC = b"SEER"
KIND_REPORT = 3
#: Largest report datagram: under a control LAN's MTU, so it is never fragmented.
REPORT_MAX = 1400
_HEADER = struct.Struct(">4sBBQQ")
MAC_LEN = 32
OVERHEAD = _HEADER.size + MAC_LEN


def encode_report(mac: KeyedMac, session: int, seq: int, body: dict[str, Any]) -> bytes | None:
    """The report datagram under the node's key, or None if it would be larger
    than REPORT_MAX."""
    payload = dumps(body)
    if len(payload) + OVERHEAD > REPORT_MAX:
        return None
    signed = _HEADER.pack(MAGIC, PROTOCOL_VERSION, KIND_REPORT, session, seq) + payload
    return signed + mac.digest(signed)


def report_session(data: bytes) -> tuple[int, int]:
    """(session, seq) of a report datagram, unverified: which key checks it."""
    if not OVERHEAD <= len(data) <= REPORT_MAX:
        raise WireError("truncated" if len(data) < OVERHEAD else "oversized",
                        f"report datagram of {len(data)} bytes")
    magic, version, kind, session, seq = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireError("magic", f"datagram starts with {magic!r}")
    if version != PROTOCOL_VERSION:
        raise WireError("version", version_mismatch("report datagram", version))
    if kind != KIND_REPORT:
        raise WireError("kind", f"kind {kind} is not a report")
    return session, seq


def decode_report(mac: KeyedMac, data: bytes) -> dict[str, Any]:
    """The body of a report datagram made under ``mac``'s key; WireError otherwise."""
    signed, sealed = data[:-MAC_LEN], data[-MAC_LEN:]
    if not mac.matches(signed, sealed):
        raise WireError("mac", "HMAC does not match the node's report key")
    body = decode_json(signed[_HEADER.size:], "report body")
    if not isinstance(body, dict):
        raise WireError("body", "a report body is an object")
    return body
