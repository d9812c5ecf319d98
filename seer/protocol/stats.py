"""The stats pipeline's shared formats: STATS frames, aggregates, run-record rows.

Pure and light (no Twisted): the daemon sends STATS frames, the controller
checks them with :func:`parse_readings` and sends AGGREGATE frames, and a
client (``seer stats record``) writes the same run-record rows as the
controller does for ``seer run`` -- :func:`rows` is the one definition of
those rows.  docs/PROTOCOL.md has the frames; docs/STATS.md the metrics.

A reading is ``{"poller": NAME, "t": node time, "series": [[labels,
values], ...]}``; a value whose name ends in ``_total`` is a counter.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterator

#: The limits a STATS (or READINGS) frame is held to; beyond them it is refused
#: whole, so that one node cannot make the controller keep unbounded series.
MAX_READINGS = 64
MAX_SERIES = 2000
MAX_LABELS = 8
MAX_VALUES = 32
MAX_TEXT = 128
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Names already found good: a controller sees the same few hundred names in
#: every frame, and checking each with the pattern was most of its cost.
_GOOD_NAMES: set[str] = set()


def _good_name(name: object) -> bool:
    if name in _GOOD_NAMES:
        return True
    if isinstance(name, str) and NAME.match(name):
        if len(_GOOD_NAMES) < 100_000:
            _GOOD_NAMES.add(name)
        return True
    return False

#: Columns of a run record's samples (stats.csv): one row per value per interval.
SAMPLE_COLUMNS = ("time", "elapsed", "kind", "name", "field", "value")
#: Columns of a run record's command log (commands.csv).
COMMAND_COLUMNS = ("time", "serial", "sender", "type", "agent", "group", "command", "target",
                   "nodes", "applied", "failed", "skipped", "unconfirmed", "first_error")
#: The kinds of entity an aggregate has (a third-party aggregator may add more).
KINDS = ("links", "nodes", "interfaces", "groups")


class ReadingsError(ValueError):
    """A STATS frame that breaks the format or its limits; the message says how."""


def _label_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise ReadingsError(f"{where}: labels must be an object of at most {MAX_LABELS} strings")
    for key, text in value.items():
        if not _good_name(key) or not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ReadingsError(f"{where}: label {key!r} must be a name with a string value "
                                f"of at most {MAX_TEXT} characters")
    return value


def _value_map(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict) or len(value) > MAX_VALUES:
        raise ReadingsError(f"{where}: values must be an object of at most {MAX_VALUES} numbers")
    for key, number in value.items():
        if not _good_name(key) or number is True or number is False \
                or not isinstance(number, (int, float)):
            raise ReadingsError(f"{where}: value {key!r} must be a name with a number")
    return value


def parse_readings(readings: Any) -> list[dict[str, Any]]:
    """A STATS frame's ``readings``, checked; ReadingsError says what is wrong."""
    if not isinstance(readings, list) or len(readings) > MAX_READINGS:
        raise ReadingsError(f"readings must be a list of at most {MAX_READINGS}")
    out = []
    for i, reading in enumerate(readings):
        where = f"reading {i}"
        if not isinstance(reading, dict):
            raise ReadingsError(f"{where} is not an object")
        poller, t, series = reading.get("poller"), reading.get("t"), reading.get("series")
        if not _good_name(poller):
            raise ReadingsError(f"{where}: poller must be a name")
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise ReadingsError(f"{where} ({poller}): t must be a time in seconds")
        if not isinstance(series, list) or len(series) > MAX_SERIES:
            raise ReadingsError(f"{where} ({poller}): series must be a list of at most "
                                f"{MAX_SERIES}")
        checked = []
        for j, item in enumerate(series):
            if not isinstance(item, list) or len(item) != 2:
                raise ReadingsError(f"{where} ({poller}) series {j}: not [labels, values]")
            checked.append((_label_map(item[0], f"{poller} series {j}"),
                            _value_map(item[1], f"{poller} series {j}")))
        out.append({"poller": poller, "t": float(t), "series": checked})
    return out


def is_counter(value_name: str) -> bool:
    return value_name.endswith("_total")


def metric_name(poller: str, value_name: str) -> str:
    """The Prometheus name of a poller's value: ``seer_<poller>_<value>``."""
    return f"seer_{poller}_{value_name}"


def flatten(entity: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """An entity's numbers as (field, value): top-level ones, and those of
    nested objects one level down as ``outer.inner``."""
    for key, value in entity.items():
        if isinstance(value, bool):
            yield key, int(value)
        elif isinstance(value, (int, float)):
            if math.isfinite(value):
                yield key, value
        elif isinstance(value, dict):
            for inner, number in value.items():
                if isinstance(number, (int, float)) and not isinstance(number, bool) \
                        and math.isfinite(number):
                    yield f"{key}.{inner}", number


def rows(aggregate: dict[str, Any], started: float) -> Iterator[tuple[Any, ...]]:
    """The run-record rows (SAMPLE_COLUMNS) of one aggregate."""
    t = aggregate.get("time", 0.0)
    when, elapsed = round(t, 3), round(t - started, 3)
    for kind, entities in aggregate.items():
        if not isinstance(entities, dict):
            continue
        for name, entity in sorted(entities.items()):
            if isinstance(entity, dict):
                for field, value in flatten(entity):
                    yield (when, elapsed, kind, name, field,
                           round(value, 6) if isinstance(value, float) else value)


def command_row(entry: dict[str, Any]) -> tuple[Any, ...]:
    """A command-log entry as a commands.csv row."""
    target = entry.get("target")
    counts = entry.get("counts") or {}
    return (round(entry.get("time", 0.0), 3), entry.get("serial"), entry.get("sender", ""),
            entry.get("type", ""), entry.get("agent", ""), entry.get("group", ""),
            entry.get("command", ""),
            target if isinstance(target, str) else " ".join(map(str, target or [])),
            entry.get("nodes", 0), counts.get("applied", 0), counts.get("failed", 0),
            counts.get("skipped", 0), counts.get("unconfirmed", 0), entry.get("first_error", ""))
