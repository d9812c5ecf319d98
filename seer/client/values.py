"""What a message to the experiment came to: each node's :class:`Outcome`
and the :class:`Result` that gathers them.

An outcome is ``applied``, ``failed`` (with the agent's error), ``skipped``
(the node is not in the group's NODES) or ``unconfirmed`` (no answer before
the timeout, with the reason).  Plain values: no I/O here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: The statuses that count as success for a node.
OK_STATUSES = ("applied", "skipped")


@dataclass(frozen=True)
class Outcome:
    node: str
    status: str
    error: str | None = None
    result: Any = None
    #: When the node started on the message (its clock, seconds since 1970).
    at: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def describe(self, result_width: int = 70) -> str:
        """One line: the status, then the error or a compact form of the result."""
        text = self.status
        if self.error:
            text += f": {self.error}"
        elif isinstance(self.result, dict) and self.result.get("via") == "snapshot":
            text += " (via snapshot)"
        elif self.result not in (None, {}, []):
            shown = json.dumps(self.result, separators=(",", ":"))
            if len(shown) > result_width:
                shown = shown[: result_width - 3] + "..."
            text += f"  {shown}"
        return text


@dataclass
class Result:
    """The outcome of one message on every node it targeted."""

    what: str
    serial: int
    nodes: list[str]
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def job(self) -> int:
        """The job id (the message's serial): `seer job ID` shows it again,
        with outcomes that come later."""
        return self.serial

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes.values()) and len(self.outcomes) == len(self.nodes)

    def by_status(self, status: str) -> list[str]:
        return [n for n, o in self.outcomes.items() if o.status == status]

    @property
    def failed(self) -> list[str]:
        return self.by_status("failed")

    @property
    def unconfirmed(self) -> list[str]:
        return self.by_status("unconfirmed")

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def skew(self) -> float | None:
        """Seconds between the first and the last node starting on it."""
        times = [o.at for o in self.outcomes.values() if o.at is not None]
        return max(times) - min(times) if len(times) > 1 else None

    def problem_summary(self) -> str:
        bad = [o for o in self.outcomes.values() if not o.ok]
        lines = [f"{self.what}: {len(bad)} of {len(self.nodes)} nodes did not apply it"]
        lines += [f"  {o.node}: {o.describe()}" for o in bad[:20]]
        if len(bad) > 20:
            lines.append(f"  ... and {len(bad) - 20} more")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what, "job": self.job, "serial": self.serial, "nodes": self.nodes,
            "ok": self.ok,
            "outcomes": {
                n: {k: v for k, v in (("status", o.status), ("error", o.error),
                                      ("result", o.result), ("at", o.at)) if v is not None}
                for n, o in self.outcomes.items()
            },
        }
