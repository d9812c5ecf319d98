"""The last minutes of aggregates, in memory, in a fixed space.

One column of doubles per field of every link, node and group (and kinds a
third-party aggregator adds; not interfaces: their numbers are their
link's and node's) -- ``links/servers/bps`` --
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


#: Kinds of entity whose history is not kept: an interface's numbers are in its
#: link's and its node's (and in the run records, every interval); keeping
#: them too was three quarters of the controller's stats work.
NOT_KEPT = frozenset({"interfaces"})


class History:
    def __init__(self, length: int = 600, max_columns: int = 50_000,
                 not_kept: frozenset[str] = NOT_KEPT) -> None:
        if length < 1:
            raise ValueError("a history holds at least one interval")
        self.length = length
        self.max_columns = max_columns
        self.not_kept = not_kept
        self.times = array("d", [NAN] * length)
        self.columns: dict[str, array] = {}
        self._last_seen: dict[str, int] = {}
        #: (kind, name) -> field -> (key, column): the columns of each entity.
        self._entities: dict[tuple[str, str], dict[str, tuple[str, array]]] = {}
        self.added = 0
        self.refused_columns = 0

    def __len__(self) -> int:
        return min(self.added, self.length)

    def add(self, aggregate: dict[str, Any]) -> None:
        """Keep one interval's aggregate (its ``time`` and every entity's numbers)."""
        slot = self.added % self.length
        self.times[slot] = float(aggregate.get("time") or 0.0)
        written: set[int] = set()
        columns = self.columns
        for kind, entities in aggregate.items():
            if not isinstance(entities, dict) or kind in self.not_kept:
                continue
            for name, entity in entities.items():
                if not isinstance(entity, dict):
                    continue
                # An entity's columns by field, kept: no key is built for the
                # fields seen before (this is the controller's hottest loop).
                known = self._entities.get((kind, name))
                if known is None:
                    known = self._entities[(kind, name)] = {}
                for field, number in flatten(entity):
                    column = known.get(field)
                    if column is None or columns.get(column[0]) is not column[1]:
                        key = f"{kind}/{name}/{field}"
                        array_ = columns.get(key)
                        if array_ is None:
                            if len(columns) >= self.max_columns:
                                self.refused_columns += 1
                                continue
                            array_ = columns[key] = array("d", [NAN] * self.length)
                        column = known[field] = (key, array_)
                    column[1][slot] = float(number)
                    written.add(id(column[1]))
                    self._last_seen[column[0]] = self.added
        for key in [k for k, a in columns.items() if id(a) not in written]:
            if self.added - self._last_seen.get(key, 0) >= self.length:
                del columns[key]
                self._last_seen.pop(key, None)
            else:
                columns[key][slot] = NAN
        if len(self._entities) > 2 * max(1, len(columns)):
            self._entities.clear()  # entities that are gone: their caches go too
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
