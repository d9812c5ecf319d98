"""Which nodes a message is for: parsing target specs and matching them.

A target spec is a string (or a list of strings) of terms separated by
commas or white space:

``all`` or ``*``
    every node of the experiment, including nodes that register later.
``client*``, ``n[1-3]``, ``server1``
    shell wildcard over node names.
``@sink``, ``@role=router``
    nodes whose attribute is set (to anything but a false value), or equal
    to the given value.
``has:LABEL``
    the one node that is LABEL, carries it as a label, owns the address
    LABEL, or has an interface named or labelled LABEL (SEER's
    ``sendToNodeThatHas``).  Ambiguity is an error.

Every term must match at least one node, so a typo is reported instead of
silently narrowing the target.  The controller resolves a spec to a sorted
list of node names; the datagram carries ``"*"`` for ``all`` and the list
otherwise, which every node checks with :func:`targets_node`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

ALL = "*"
_FALSE_VALUES = {"", "0", "false", "no", "off"}
_SPLIT = re.compile(r"[\s,]+")
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


class TargetError(ValueError):
    """A target spec that does not parse or matches no node."""


class NodeLike(Protocol):
    name: str
    addresses: Sequence[str]
    interfaces: Sequence[dict[str, Any]]
    labels: Sequence[str]
    attributes: dict[str, str]


def short_name(hostname: str) -> str:
    """A node's name from a host name: the part before the first dot."""
    return hostname.split(".", 1)[0]


def check_node_name(name: str) -> str:
    if not isinstance(name, str) or not NODE_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a valid node name: use 1-63 letters, digits, "
            "'-' or '_', starting with a letter or digit (no domain)"
        )
    return name


@dataclass(frozen=True)
class Target:
    """A parsed target spec."""

    terms: tuple[str, ...]

    @property
    def is_all(self) -> bool:
        return any(t in ("all", ALL) for t in self.terms)

    def __str__(self) -> str:
        return ",".join(self.terms)

    def resolve(self, nodes: Iterable[NodeLike]) -> list[str]:
        """The sorted names of the nodes this target selects."""
        nodes = list(nodes)
        if not nodes:
            raise TargetError(
                f"target {str(self)!r} matches no node: no node has "
                "registered and no node list was given"
            )
        if self.is_all:
            return sorted(n.name for n in nodes)
        chosen: set[str] = set()
        for term in self.terms:
            matched = _match_term(term, nodes)
            if not matched:
                known = ", ".join(sorted(n.name for n in nodes)[:20])
                raise TargetError(
                    f"target term {term!r} matches no node (known nodes: {known})"
                )
            chosen.update(matched)
        return sorted(chosen)

    def wire(self, resolved: list[str]) -> str | list[str]:
        """What the datagram carries for this target."""
        return ALL if self.is_all else resolved


def parse_target(spec: str | Sequence[str] | None) -> Target:
    """Parse a target spec; ``None`` or empty means every node."""
    if spec is None:
        return Target((ALL,))
    if isinstance(spec, str):
        parts = [p for p in _SPLIT.split(spec.strip()) if p]
    elif isinstance(spec, (list, tuple)) and all(isinstance(s, str) for s in spec):
        parts = [p for s in spec for p in _SPLIT.split(s.strip()) if p]
    else:
        raise TargetError(f"target must be a string or list of strings, not {spec!r}")
    if not parts:
        return Target((ALL,))
    for part in parts:
        _check_pattern(part)
        if part.startswith("has:") and len(part) == 4:
            raise TargetError("'has:' needs a label, address or interface after it")
        if part.startswith("@") and len(part.split("=", 1)[0]) == 1:
            raise TargetError("'@' needs an attribute name after it, e.g. @sink")
    return Target(tuple(parts))


def _check_pattern(term: str) -> None:
    """A shell pattern with an unclosed ``[`` (``n[1-``) is a typo, not a
    pattern that happens to match no node: say so."""
    if term.startswith(("@", "has:")):
        return
    for i, char in enumerate(term):
        if char == "[":
            # As in fnmatch, a ']' (or '!]') right after '[' is part of the set.
            start = i + 2 if term[i + 1:i + 2] in ("!", "]") else i + 1
            if term.find("]", start) == -1:
                raise TargetError(f"malformed target {term!r}: the '[' at position {i + 1} "
                                  "is never closed (e.g. n[1-3])")
        elif char == "]" and "[" not in term[:i]:
            raise TargetError(f"malformed target {term!r}: a ']' without its '['")


def _attribute_matches(term: str, node: NodeLike) -> bool:
    name, sep, wanted = term[1:].partition("=")
    value = node.attributes.get(name)
    if value is None:
        return False
    if sep:
        return str(value) == wanted
    return str(value).lower() not in _FALSE_VALUES


def _same_address(a: str, b: str) -> bool:
    import netaddr

    try:
        return netaddr.IPAddress(a) == netaddr.IPAddress(b.split("/")[0])
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return False


def node_has(node: NodeLike, label: str) -> bool:
    """SEER's "the node that is 'label' or is controlling an interface 'label'"."""
    if node.name == label or label in node.labels:
        return True
    if any(_same_address(label, a) for a in node.addresses):
        return True
    for iface in node.interfaces:
        if label in (iface.get("name"), iface.get("label")):
            return True
        if any(_same_address(label, a) for a in iface.get("addresses", ())):
            return True
    return False


def _match_term(term: str, nodes: list[NodeLike]) -> list[str]:
    if term.startswith("@"):
        return [n.name for n in nodes if _attribute_matches(term, n)]
    if term.startswith("has:"):
        label = term[4:]
        found = [n.name for n in nodes if node_has(n, label)]
        if len(found) > 1:
            raise TargetError(
                f"{term!r} is ambiguous: {', '.join(sorted(found))} all have "
                f"{label!r}; name the node instead"
            )
        return found
    return [n.name for n in nodes if fnmatch.fnmatchcase(n.name, term)]


def targets_node(wire_target: Any, name: str) -> bool:
    """Whether a datagram's target includes node ``name`` (node side)."""
    if wire_target == ALL:
        return True
    return isinstance(wire_target, list) and name in wire_target
