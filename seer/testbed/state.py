"""Where a running testbed keeps what `status`, `down` and the CLI need.

``/run/seer/testbeds/<name>/`` (or ``$SEER_TESTBED_DIR/<name>/``) holds
``testbed.json`` (the controller's relay address, certificates, namespaces,
the topology), the certificates, the controller's state and every process's
log.  `down` works without it too: namespaces are found by name and
processes by their namespace or their ``SEER_TESTBED`` tag.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "testbed.json"


def root() -> Path:
    return Path(os.environ.get("SEER_TESTBED_DIR") or "/run/seer/testbeds")


def directory(name: str) -> Path:
    return root() / name


def read(name: str) -> dict[str, Any] | None:
    try:
        return json.loads((directory(name) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write(name: str, state: dict[str, Any]) -> None:
    path = directory(name) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)


def known() -> list[str]:
    """Names of testbeds with a state folder."""
    folder = root()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / STATE_FILE).exists())


def running() -> list[dict[str, Any]]:
    """States of testbeds that finished coming up and are not down."""
    return [s for s in (read(n) for n in known()) if s and s.get("up")]


def client_defaults(name: str | None = None) -> dict[str, str] | None:
    """controller, certs and identity of the named testbed, or of the only
    running one; None if there is none (or several and none was named)."""
    name = name or os.environ.get("SEER_TESTBED")
    if name:
        state = read(name)
        return state["client"] if state and state.get("up") else None
    up = running()
    return up[0]["client"] if len(up) == 1 else None
