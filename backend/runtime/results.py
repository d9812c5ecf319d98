"""What an agent hands back, made fit for the wire, and the words for what it raised.

Every outcome's result and every event or stream sample an agent makes ends
up inside a JSON frame (a REPORT or a STREAM, and on the way there, for an
agent in a worker, the worker protocol).  One value that JSON cannot carry
-- an object, NaN, a set -- used to fail the encoding of the whole frame and
lose every other outcome in it.  So each value is checked on its own, where
it is made, before it is queued:

* a handler's result (:func:`json_result`): JSON as it is; a top-level
  value of another type becomes its ``str()``, as it always has; anything
  that is not JSON *inside* a dict or list fails that message's outcome,
  saying what and where (``result['x'] is nan, which JSON cannot carry``)
  -- a mangled result would be worse than a clear error;
* event and stream data (:func:`json_safe`): a side channel, better
  mangled than lost -- what JSON cannot carry becomes its ``repr``.

:func:`describe` and :func:`describe_failure` turn what an agent raised
into the text of a failed outcome.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

from twisted.python.failure import Failure

from seer.protocol.vartypes import VarError
from seer.protocol.wire import checked_dumps

#: Largest result one outcome may carry (bytes of JSON): a REPORT holds many.
MAX_RESULT = 1 << 20
#: Largest event or stream sample (bytes of JSON); a larger one is replaced.
MAX_DATA = 1 << 20
#: Deeper than this a value is not walked (JSON encoders give up near 1000).
MAX_DEPTH = 200

#: Errors that describe a user's mistake or a tool's failure: reported
#: without a traceback.  Anything else (a bug) gets the last three frames.
USER_ERRORS = (ValueError, OSError, TimeoutError)

_SCALARS = (str, int, bool, type(None))


def json_result(value: Any) -> tuple[str | None, Any]:
    """``(None, result)`` if ``value`` can be an outcome's result, else
    ``(why, None)``: why it cannot, naming the first bad part."""
    if isinstance(value, _SCALARS):
        return None, value
    if isinstance(value, float):
        if math.isfinite(value):
            return None, value
        return f"the result is {value!r}, which JSON cannot carry", None
    if not isinstance(value, (dict, list, tuple)):
        return None, str(value)
    try:
        size = len(checked_dumps(value))
    except (TypeError, ValueError, RecursionError) as e:
        return f"the result is not JSON: {_first_problem(value) or e}", None
    if size > MAX_RESULT:
        return (f"the result is {size} bytes of JSON, more than the {MAX_RESULT} an outcome "
                "may carry; write it to a file in the work folder and GET it"), None
    return None, value


def json_safe(value: Any) -> Any:
    """``value`` if JSON can carry it; else a copy in which whatever JSON
    cannot carry is its ``repr`` (and non-string keys their ``str``)."""
    try:
        size = len(checked_dumps(value))
    except (TypeError, ValueError, RecursionError):
        value = _repaired(value, 0, set())
        size = len(checked_dumps(value))
    if size > MAX_DATA:
        return {"dropped": f"{size} bytes of JSON, more than the {MAX_DATA} allowed"}
    return value


def _repaired(value: Any, depth: int, seen: set[int]) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth >= MAX_DEPTH or id(value) in seen or not isinstance(value, (dict, list, tuple)):
        return _short_repr(value)
    seen = seen | {id(value)}
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _repaired(v, depth + 1, seen)
                for k, v in value.items()}
    return [_repaired(v, depth + 1, seen) for v in value]


def _first_problem(value: Any) -> str | None:
    """Where the first part of ``value`` that JSON cannot carry is, and what it is."""
    stack: list[tuple[Any, str, int, frozenset[int]]] = [(value, "result", 0, frozenset())]
    while stack:
        item, path, depth, seen = stack.pop()
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{path} is {item!r}, which JSON cannot carry"
            continue
        if not isinstance(item, (dict, list, tuple)):
            return f"{path} is {_article(item)} ({_short_repr(item)})"
        if id(item) in seen:
            return f"{path} contains itself"
        if depth >= MAX_DEPTH:
            return f"{path} nests more than {MAX_DEPTH} levels deep"
        inner = seen | {id(item)}
        if isinstance(item, dict):
            children = []
            for key, child in item.items():
                if not isinstance(key, (str, int, float, bool, type(None))):
                    return f"{path} has a key of type {type(key).__name__} ({_short_repr(key)})"
                if isinstance(key, float) and not math.isfinite(key):
                    return f"{path} has the key {key!r}, which JSON cannot carry"
                children.append((child, f"{path}[{key!r}]", depth + 1, inner))
        else:
            children = [(child, f"{path}[{i}]", depth + 1, inner) for i, child in enumerate(item)]
        stack.extend(reversed(children))
    return None


def _article(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break the report of it
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- what an agent raised ---------------------------------------------------------


def describe(e: BaseException) -> str:
    """``Type: message`` (a KeyError's or VarError's message alone)."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    if isinstance(e, (KeyError, VarError)):
        return text
    name = type(e).__name__
    return f"{name}: {text}" if text else name


def describe_failure(failure: Failure) -> str:
    """The error with a short traceback: the last three frames of the agent's own code."""
    error = failure.value
    summary = describe(error)
    tb = failure.getTracebackObject()
    if tb is None or isinstance(error, USER_ERRORS):
        # A refusal that says what was wrong needs no traceback.
        return summary
    frames = [f for f in traceback.extract_tb(tb)
              if "/twisted/" not in f.filename and "/backend/runtime/runner.py" not in f.filename]
    frames = frames[-3:]
    if not frames:
        return summary
    where = " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"
                        for f in reversed(frames))
    return f"{summary} [at {where}]"
