"""Checking clients' requests before anything is sent (controller side).

Each parser takes a frame header and returns what the controller needs, or
raises :class:`RequestError` with a message that names the field and says
what is expected; the client prints it and nothing changes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from backend.runtime.files import MAX_PUT, FileNameError, check_name, sha256_of
from seer.protocol.targets import check_node_name

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
COMMAND = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
MAX_TIMEOUT = 24 * 3600.0
MAX_AHEAD = 7 * 24 * 3600.0
#: A scheduled time this far in the past is a mistake, not clock skew.
PAST_SLACK = 5.0


class RequestError(ValueError):
    """A client request that cannot be carried out; nothing was changed."""


@dataclass(frozen=True)
class Request:
    message: dict[str, Any]
    target: Any
    timeout: float


def _name(header: dict[str, Any], key: str, what: str) -> str:
    value = header.get(key)
    if not isinstance(value, str) or not NAME.match(value):
        raise RequestError(
            f"{what} must be 1-64 letters, digits, '.', '_' or '-', got {value!r}"
        )
    return value


def _number(header: dict[str, Any], key: str) -> float | None:
    value = header.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{key} must be a number, got {value!r}")
    return float(value)


def _timeout(header: dict[str, Any], default: float) -> float:
    timeout = _number(header, "timeout")
    if timeout is None:
        return default
    if not 0 < timeout <= MAX_TIMEOUT:
        raise RequestError(f"timeout must be between 0 and {MAX_TIMEOUT:.0f} seconds, got {timeout}")
    return timeout


def _when(header: dict[str, Any], now: float) -> float | None:
    at, delay = _number(header, "time"), _number(header, "delay")
    if at is not None and delay is not None:
        raise RequestError("give either time (absolute) or delay (seconds from now), not both")
    if delay is not None:
        if not 0 <= delay <= MAX_AHEAD:
            raise RequestError(f"delay must be between 0 and {MAX_AHEAD:.0f} seconds, got {delay}")
        return now + delay if delay > 0 else None
    if at is not None:
        if at < now - PAST_SLACK:
            raise RequestError(f"time {at} is {now - at:.1f} s in the past")
        if at > now + MAX_AHEAD:
            raise RequestError("time is more than 7 days ahead")
    return at


def _base(kind: str, header: dict[str, Any], default_timeout: float, now: float) -> tuple[dict[str, Any], float]:
    message: dict[str, Any] = {
        "type": kind,
        "agent": _name(header, "agent", "agent type"),
        "group": _name(header, "group", "group name"),
    }
    when = _when(header, now)
    if when is not None:
        message["time"] = when
    return message, _timeout(header, default_timeout)


def parse_command(header: dict[str, Any], default_timeout: float, now: float) -> Request:
    message, timeout = _base("COMMAND", header, default_timeout, now)
    command = header.get("command")
    if not isinstance(command, str) or not COMMAND.match(command):
        raise RequestError(
            f"command must be an upper-case name such as START or STOP, got {command!r}"
        )
    args = header.get("args", {})
    if not isinstance(args, dict):
        raise RequestError(f"args must be an object of NAME: value, got {args!r}")
    message["command"] = command
    message["args"] = args
    return Request(message, header.get("target"), timeout)


def parse_set(header: dict[str, Any], default_timeout: float, now: float) -> Request:
    message, timeout = _base("SET", header, default_timeout, now)
    variables = header.get("vars")
    if not isinstance(variables, dict) or not variables:
        raise RequestError("SET needs vars: an object of at least one NAME: value")
    message["vars"] = variables
    return Request(message, header.get("target"), timeout)


def parse_wait(header: dict[str, Any], required: list[str], default_timeout: float) -> tuple[list[str], float]:
    names = header.get("nodes")
    if names is None:
        names = required
        if not names:
            raise RequestError(
                "no nodes to wait for: name them, or start the controller with --required"
            )
    if not isinstance(names, list):
        raise RequestError("nodes must be a list of node names")
    try:
        names = [check_node_name(n) for n in names]
    except ValueError as e:
        raise RequestError(str(e)) from None
    return sorted(set(names)), _timeout(header, default_timeout)


def parse_nack(header: dict[str, Any], current: int) -> list[tuple[int, int]]:
    ranges = header.get("ranges")
    if not isinstance(ranges, list) or len(ranges) > 1000:
        raise RequestError("NACK needs ranges: a list of at most 1000 [low, high] pairs")
    out = []
    for item in ranges:
        if (
            not isinstance(item, list) or len(item) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in item)
            or not 1 <= item[0] <= item[1]
        ):
            raise RequestError(f"bad NACK range {item!r}; expected [low, high] with 1 <= low <= high")
        if item[0] <= current:
            out.append((item[0], min(item[1], current)))
    return out


def _file_name(header: dict[str, Any], kind: str = "file") -> str:
    try:
        return check_name(header.get("name"), kind)
    except FileNameError as e:
        raise RequestError(str(e)) from None


def parse_put(header: dict[str, Any], blob: bytes, default_timeout: float, now: float) -> Request:
    kind = header.get("kind", "file")
    if kind not in ("file", "agent"):
        raise RequestError(f"kind must be 'file' or 'agent', got {kind!r}")
    if len(blob) > MAX_PUT:
        raise RequestError(f"PUT carries at most {MAX_PUT} bytes; this file has {len(blob)}")
    mode = header.get("mode", 0o644)
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
        raise RequestError(f"mode must be a permission number such as 0o644, got {mode!r}")
    message: dict[str, Any] = {"type": "PUT", "name": _file_name(header, kind), "kind": kind,
                               "mode": mode, "size": len(blob), "sha256": sha256_of(blob)}
    when = _when(header, now)
    if when is not None:
        message["time"] = when
    return Request(message, header.get("target"), _timeout(header, default_timeout))


def parse_get(header: dict[str, Any], default_timeout: float, now: float) -> Request:
    message = {"type": "GET", "name": _file_name(header)}
    return Request(message, header.get("target"), _timeout(header, default_timeout))
