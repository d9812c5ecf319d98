"""SEER wire protocol: stream frames and the JSON every message uses.

This module is sans-IO: it turns bytes into typed values and back, and knows
nothing of sockets, reactors or time.  docs/PROTOCOL.md is the normative
description; the layout is repeated here so the code can be read alone.
The multicast datagrams are :mod:`seer.protocol.datagrams`.

Stream frames (every TLS connection, both directions)::

    length   u32 big-endian   number of bytes that follow
    version  u8               PROTOCOL_VERSION
    json_len u32 big-endian   length of the JSON header
    json     json_len bytes   UTF-8 JSON object with a string "type"
    blob     the rest         raw bytes (file contents, a repaired datagram)

It needs only the standard library (servers may switch its JSON to orjson,
:func:`use_orjson`), so the blocking client stays light.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Callable

#: Version 2 (this release): see docs/PROTOCOL.md, "Changes in version 2".
PROTOCOL_VERSION = 2

#: Largest stream frame accepted (bytes after the length field).  Files larger
#: than this travel in several frames.
MAX_FRAME = 16 * 1024 * 1024

_FRAME_LENGTH = struct.Struct(">I")
_FRAME_PREFIX = struct.Struct(">BI")


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


# Made once: json.loads and json.dumps given options build a new decoder or
# encoder on every call, which cost more than the JSON itself for SEER's
# small frames (a third of a REPORT's encoding).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _stdlib_loads(data: bytes) -> Any:
    return _DECODER.decode(data.decode("utf-8"))


def _stdlib_dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


#: The codec in use: the standard library's unless use_orjson() was called.
_loads: Callable[[bytes], Any] = _stdlib_loads
_dumps: Callable[[Any], bytes] = _stdlib_dumps


def use_orjson(enabled: bool = True) -> None:
    """orjson for this process's wire JSON: what the daemon and the controller
    choose (backend/tap.py).  A node decodes a datagram body and encodes a
    report per command, the controller decodes a report per node per
    command: orjson does each 2-15x faster (docs/PERFORMANCE.md).  Clients
    keep the standard library: importing orjson (it loads uuid, inspect and
    more) costs about 7.5 ms, more than a command's JSON.  Both codecs are
    strict alike: no NaN, no Infinity, no number that overflows to infinity."""
    global _loads, _dumps
    if not enabled:  # back to the standard library's (tests compare the two)
        _loads, _dumps = _stdlib_loads, _stdlib_dumps
        return
    import orjson

    def loads(data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            if "infinity" in str(e):
                raise ValueError("a number is out of range") from None
            raise

    # Keys that are numbers, booleans or null become strings, as json.dumps does.
    _loads, _dumps = loads, functools.partial(orjson.dumps, option=orjson.OPT_NON_STR_KEYS)


def decode_json(data: bytes, what: str) -> Any:
    try:
        return _loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WireError("body", f"{what} is not UTF-8 JSON ({e})") from None


def version_mismatch(what: str, version: int) -> str:
    """What to tell a peer (and the operator) of another protocol version."""
    return (f"{what} of SEER protocol version {version}, but this SEER speaks version "
            f"{PROTOCOL_VERSION}; run the same SEER release on the controller, the daemons "
            "and the clients")


def non_finite(value: Any, where: str = "") -> str | None:
    """Where in ``value`` the first NaN or infinity is, and what it is
    (``vars.rate is Infinity``), or None: JSON carries neither, so SEER
    refuses them before anything is sent."""
    if isinstance(value, float) and not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
        return f"{where or 'the value'} is {shown}"
    if isinstance(value, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((bad for key, item in items if (bad := non_finite(item, key)) is not None),
                None)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, the only JSON encoding SEER puts on the wire;
    TypeError for what JSON cannot carry.  Under orjson NaN and infinities
    become null: a value that may hold them (an agent's) goes through
    :func:`checked_dumps`."""
    return _dumps(value)


def checked_dumps(value: Any) -> bytes:
    """:func:`dumps`, but ValueError if ``value`` holds NaN or an infinity."""
    data = _dumps(value)
    if _dumps is not _stdlib_dumps and b"null" in data:  # perhaps a NaN written as null
        _ENCODER.encode(value)
    return data


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
            version_mismatch("frame", version),
        )
    end = _FRAME_PREFIX.size + json_len
    if end > len(body):
        raise WireError(
            "truncated", f"JSON length {json_len} exceeds the frame"
        )
    header = decode_json(body[_FRAME_PREFIX.size : end], "frame header")
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
