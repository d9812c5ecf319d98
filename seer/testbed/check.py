"""`seer testbed check`: every node pings every other node it should reach,
and the matrix is printed -- Mininet's ``pingall`` for a SEER testbed.

A node should reach another if it shares a network with it (then it pings
that address) or has a route, through routers, to one of the other's
networks (then it pings the address there).  Pairs the topology gives no
path are shown as such, not as failures.  The pings run in the nodes'
namespaces, many at once, each bounded (two echo requests, one second's
wait).  Expectations are pure functions of the topology's description;
only :func:`ping_all` runs programs.
"""

from __future__ import annotations

import subprocess
from typing import Any, Callable

from seer.testbed.netns import in_namespace

#: Pings in flight at once (each is a short-lived `ip netns exec ping`).
PARALLEL = 32
PING = ["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1"]


def expected(description: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    """(source, target) -> the address source should reach target at, or None
    when the topology gives it no path."""
    nodes = description["nodes"]
    unreachable = {tuple(pair) for pair in description.get("unreachable", [])}
    pairs: dict[tuple[str, str], str | None] = {}
    for source, info in nodes.items():
        attached = {i["network"] for i in info["interfaces"]}
        for target, other in nodes.items():
            if target == source:
                continue
            shared = [i for i in other["interfaces"] if i["network"] in attached]
            routed = [i for i in other["interfaces"] if (source, i["network"]) not in unreachable]
            chosen = (shared or routed or [None])[0]
            pairs[(source, target)] = chosen["address"].split("/")[0] if chosen else None
    return pairs


def ping_all(namespace_of: Callable[[str], str], pairs: dict[tuple[str, str], str | None],
             parallel: int = PARALLEL) -> dict[tuple[str, str], bool]:
    """Whether each expected pair answered: the pings run in the source's namespace."""
    todo = [(pair, address) for pair, address in pairs.items() if address]
    results: dict[tuple[str, str], bool] = {}
    for start in range(0, len(todo), parallel):
        batch = [(pair, subprocess.Popen(in_namespace(namespace_of(pair[0]), [*PING, address]),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                 for pair, address in todo[start:start + parallel]]
        for pair, process in batch:
            try:
                results[pair] = process.wait(timeout=10) == 0
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                results[pair] = False
    return results


def matrix(nodes: list[str], pairs: dict[tuple[str, str], str | None],
           results: dict[tuple[str, str], bool]) -> str:
    """Rows ping columns: ``.`` answered, ``X`` did not, ``-`` no path expected."""
    width = max(len(n) for n in nodes)
    lines = [" " * (width + 1) + " ".join(f"{n:>{width}}" for n in nodes)]
    for source in nodes:
        cells = []
        for target in nodes:
            if target == source:
                mark = ""
            elif pairs.get((source, target)) is None:
                mark = "-"
            else:
                mark = "." if results.get((source, target)) else "X"
            cells.append(f"{mark:>{width}}")
        lines.append(f"{source:<{width}} " + " ".join(cells))
    return "\n".join(lines)


def summary(pairs: dict[tuple[str, str], str | None],
            results: dict[tuple[str, str], bool]) -> tuple[str, list[str]]:
    """One line of totals, and a line per pair that should have answered and did not."""
    due = [p for p, address in pairs.items() if address]
    failed = [p for p in due if not results.get(p)]
    unexpected = len(pairs) - len(due)
    line = (f"{len(due) - len(failed)} of {len(due)} pairs reach each other"
            + (f"; {unexpected} pairs have no path in the topology" if unexpected else ""))
    return line, [f"{a} cannot reach {b} at {pairs[(a, b)]}" for a, b in failed]
