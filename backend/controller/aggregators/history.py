"""The last minutes of aggregates, in memory, in a fixed space.

One column of doubles per field of every entity (``links/servers/bps``),
as a ring the length of the history (600 intervals: 10 minutes at 1 s), and
one ring of times: 8 bytes a value, so 100 nodes x 30 fields x 600
intervals take 14 MB.  A field missing from an interval is NaN there; a
column that has been NaN for the whole window is dropped (its entity is
gone).  At most ``max_columns`` columns: beyond, new ones are refused and
counted.  Queries answer with plain lists (None for missing) for JSON.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Iterable

from seer.protocol.stats import flatten

NAN = float("nan")


class History:
    def __init__(self, length: int = 600, max_columns: int = 50_000) -> None:
        if length < 1:
            raise ValueError("a history holds at least one interval")
        self.length = length
        self.max_columns = max_columns
        self.times = array("d", [NAN] * length)
        self.columns: dict[str, array] = {}
        self._last_seen: dict[str, int] = {}
        self.added = 0
        self.refused_columns = 0

    def __len__(self) -> int:
        return min(self.added, self.length)

    def add(self, aggregate: dict[str, Any]) -> None:
        """Keep one interval's aggregate (its ``time`` and every entity's numbers)."""
        slot = self.added % self.length
        self.times[slot] = float(aggregate.get("time") or 0.0)
        written = set()
        for kind, entities in aggregate.items():
            if not isinstance(entities, dict):
                continue
            for name, entity in entities.items():
                if not isinstance(entity, dict):
                    continue
                for field, number in flatten(entity):
                    key = f"{kind}/{name}/{field}"
                    column = self.columns.get(key)
                    if column is None:
                        if len(self.columns) >= self.max_columns:
                            self.refused_columns += 1
                            continue
                        column = self.columns[key] = array("d", [NAN] * self.length)
                    column[slot] = float(number)
                    written.add(key)
                    self._last_seen[key] = self.added
        for key in [k for k in self.columns if k not in written]:
            if self.added - self._last_seen.get(key, 0) >= self.length:
                del self.columns[key]
                self._last_seen.pop(key, None)
            else:
                self.columns[key][slot] = NAN
        self.added += 1

    def _order(self, since: float | None) -> list[int]:
        """Slots oldest first, of times after ``since``."""
        n = len(self)
        first = (self.added - n) % self.length
        slots = [(first + i) % self.length for i in range(n)]
        if since is not None:
            slots = [s for s in slots if self.times[s] > since]
        return slots

    def query(self, since: float | None = None, prefixes: Iterable[str] = ()) -> dict[str, Any]:
        """``{"times": [...], "series": {key: [...]}}`` of the columns whose key
        starts with one of ``prefixes`` (all when none), after ``since``."""
        slots = self._order(since)
        wanted = tuple(prefixes)
        series = {}
        for key, column in self.columns.items():
            if wanted and not key.startswith(wanted):
                continue
            values = [column[s] for s in slots]
            series[key] = [None if math.isnan(v) else round(v, 6) for v in values]
        return {"times": [round(self.times[s], 3) for s in slots], "series": series}
