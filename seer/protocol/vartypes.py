"""Typed agent variables: declarations and conversion of wire values.

Shared by the daemon (an agent's ``processArgs``) and the controller, which
checks a SET against the agent catalogue the nodes reported before anything
is sent, so a bad value is refused once, clearly, and changes nothing.

Values are per node, SEER style: a SET may give a plain value (meaning
``'*'``, every node) or a table ``{"*": default, "node3": other}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seer.protocol.distributions import DistributionError, parse_distribution
from seer.protocol.targets import check_node_name

_LIST_SPLIT = re.compile(r"[\s,]+")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class VarError(ValueError):
    """A variable value that cannot be converted to its declared type."""


def _as_string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise VarError(f"expected a string, got {value!r}")
    return str(value)


#: An int variable holds a signed 64-bit integer, bounds or not: what agents,
#: their tools and every JSON reader on the way can take exactly.
INT_RANGE = (-(2**63), 2**63 - 1)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise VarError(f"expected an integer, got {value!r}")
    result: int | None = None
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip(), 0)
        except ValueError:
            pass
    if result is None:
        raise VarError(f"expected an integer, got {value!r}")
    if not INT_RANGE[0] <= result <= INT_RANGE[1]:
        raise VarError(f"{result} does not fit in 64 bits (an integer from {INT_RANGE[0]} "
                       f"to {INT_RANGE[1]})")
    return result


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise VarError(f"expected a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise VarError(f"expected a number, got {value!r}") from None
    if not math.isfinite(result):
        raise VarError(f"expected a finite number, got {value!r}")
    return result


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise VarError(f"expected true/false, yes/no, on/off or 1/0, got {value!r}")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [p for p in _LIST_SPLIT.split(value.strip()) if p]
    if isinstance(value, list):
        return [_as_string(v) for v in value]
    raise VarError(f"expected a list or a space/comma separated string, got {value!r}")


def _as_node(value: Any) -> str:
    try:
        return check_node_name(_as_string(value))
    except ValueError as e:
        raise VarError(str(e)) from None


def _as_nodelist(value: Any) -> list[str]:
    return [_as_node(v) for v in _as_list(value)]


def _as_cidrlist(value: Any) -> list[str]:
    items = _as_list(value)
    if not items:
        return []  # without netaddr: agents' empty defaults are checked at every start
    import netaddr

    out = []
    for item in items:
        try:
            out.append(str(netaddr.IPNetwork(item)))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise VarError(f"{item!r} is not an address or CIDR range") from None
    return out


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(bit|bps)?\s*$", re.I)
_RATE_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_rate(value: Any) -> float:
    """Bits per second from 10mbit, 500kbit, 1.5gbit, 2mbps (bytes!) or a number."""
    if isinstance(value, bool):
        raise VarError(f"expected a rate such as 10mbit, got {value!r}")
    if isinstance(value, (int, float)):
        result = float(value)
    else:
        m = _RATE.match(str(value))
        if not m:
            raise VarError(f"expected a rate such as 10mbit, 500kbit or 1gbit, got {value!r}")
        result = float(m.group(1)) * _RATE_UNITS[m.group(2).lower()]
        if (m.group(3) or "").lower() == "bps":
            result *= 8  # tc's bps means bytes per second
    if not math.isfinite(result) or result < 0:
        raise VarError(f"expected a rate of at least 0, got {value!r}")
    return result


def format_rate(bits_per_second: float) -> str:
    """A rate as tc writes it: 10mbit, 500kbit, 1200bit."""
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits_per_second >= scale and bits_per_second % scale == 0:
            return f"{int(bits_per_second // scale)}{unit}"
    return f"{int(round(bits_per_second))}bit"


def _as_distribution(value: Any):
    try:
        return parse_distribution(value)
    except DistributionError as e:
        raise VarError(str(e)) from None


#: Every variable type an agent may declare, with its converter.
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _as_string,
    "int": _as_int,
    "float": _as_float,
    "bool": _as_bool,
    "strlist": _as_list,
    "node": _as_node,
    "nodelist": _as_nodelist,
    "cidrlist": _as_cidrlist,
    "distribution": _as_distribution,
    "rate": parse_rate,
}


@dataclass(frozen=True)
class Var:
    """One declared agent variable: name, type, default, help text and, for
    numbers, the smallest and largest value allowed."""

    name: str
    type: str = "string"
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.type not in CONVERTERS:
            raise ValueError(
                f"variable {self.name!r}: unknown type {self.type!r}; "
                f"use one of {', '.join(CONVERTERS)}"
            )
        if (self.minimum is not None or self.maximum is not None) and \
                self.type not in ("int", "float", "rate"):
            raise ValueError(f"variable {self.name!r}: only int, float and rate have bounds")

    def convert(self, value: Any) -> Any:
        """Convert one wire value, or raise VarError naming this variable."""
        try:
            result = CONVERTERS[self.type](value)
        except VarError as e:
            raise VarError(f"{self.name}: {e}") from None
        if self.minimum is not None and result < self.minimum:
            raise VarError(f"{self.name}: {result} is below the minimum {self.minimum:g}")
        if self.maximum is not None and result > self.maximum:
            raise VarError(f"{self.name}: {result} is above the maximum {self.maximum:g}")
        return result

    def convert_table(self, raw: Any) -> dict[str, Any]:
        """Convert a SET value (plain or per-node table) to a node table."""
        if isinstance(raw, dict):
            if not raw:
                raise VarError(f"{self.name}: an empty per-node table")
            table = {}
            for node, value in raw.items():
                if node != "*":
                    try:
                        check_node_name(node)
                    except ValueError as e:
                        raise VarError(f"{self.name}: {e}") from None
                table[node] = self.convert(value)
            return table
        return {"*": self.convert(raw)}

    def to_json(self) -> dict[str, Any]:
        default = self.default
        if default is not None and not isinstance(default, (str, int, float, bool, list)):
            default = str(default)
        out = {"name": self.name, "type": self.type, "default": default, "help": self.help}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Var:
        return cls(data["name"], data.get("type", "string"), data.get("default"),
                   data.get("help", ""), data.get("minimum"), data.get("maximum"))


def convert_vars(
    declared: dict[str, Var], raw: dict[str, Any], agent_type: str
) -> dict[str, dict[str, Any]]:
    """Convert every variable of a SET, all or nothing.

    Raises VarError naming each unknown variable and each bad value.
    """
    if not isinstance(raw, dict) or not raw:
        raise VarError("SET needs at least one variable")
    problems = []
    converted = {}
    for name, value in raw.items():
        var = declared.get(name)
        if var is None:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(f"{agent_type} has no variable {name!r} (it has: {known})")
            continue
        try:
            converted[name] = var.convert_table(value)
        except VarError as e:
            problems.append(str(e))
    if problems:
        raise VarError("; ".join(problems))
    return converted
