"""A testbed's state folder: what `status`, `down` and the CLI need.

``/run/seer/testbeds/<name>/`` (or ``$SEER_TESTBED_DIR/<name>/``, mode
0700) holds ``testbed.json`` (the controller's relay address, certificates,
namespaces, the topology's description, the supervisor's PID and start
time), ``plan.json`` (what the supervisor runs), ``processes.json`` (the
supervisor's process table: each process's PID and start time),
``supervisor.sock``, the certificates, the controller's state and every
process's log.  These records are the only way `down` finds processes;
namespaces it finds by their exact names too, so a lost state folder still
leaves nothing in the kernel.

Where the folders are and how a client reads one is :mod:`seer.config`'s
(a client finds the running testbed without importing the testbed's
modules); this module writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seer.config import (
    TESTBED_STATE_FILE as STATE_FILE,
    known_testbeds as known,
    read_testbed as read,
    running_testbeds as running,
    testbed_client as client_defaults,
    testbeds_root as root,
)

__all__ = ["STATE_FILE", "client_defaults", "directory", "known", "read", "root", "running",
           "write"]


def directory(name: str) -> Path:
    return root() / name


def write(name: str, state: dict[str, Any]) -> None:
    path = directory(name) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)
