"""Talking to a testbed's supervisor: one JSON request per line over a Unix
socket in the testbed's state folder, one JSON reply per line.

The socket is ``<state folder>/supervisor.sock`` (mode 0600, in a 0700
folder: root's only).  Requests and their replies::

    {"op": "status"}                   -> {"ok": true, "processes": {NAME: {...}}}
    {"op": "restart", "name": "n1"}    -> {"ok": true, "process": {...}}   (once restarted)
    {"op": "stop", "name": "n1"}       -> {"ok": true, "process": {...}}   (once it has ended)
    {"op": "shutdown"}                 -> {"ok": true}   (everything stopped; then it exits)
    anything else                      -> {"ok": false, "error": "what was wrong"}

:func:`answer` is the supervisor's side (it takes the Supervisor and a
decoded request, and returns the reply or a Deferred of it); :func:`request`
is the blocking client the `seer testbed` commands use.  This module imports
no Twisted, so the CLI stays light.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

SOCKET = "supervisor.sock"
#: AF_UNIX paths are at most 107 bytes; longer ones are reached through /proc/self/fd.
_SUN_PATH_MAX = 107


class ControlError(RuntimeError):
    """The supervisor did not answer, or refused the request (the message says which)."""


def answer(supervisor: Any, request: Any) -> Any:
    """The reply to one request (a dict, or a Deferred firing with one)."""
    from seer.testbed.supervisor import SupervisorError

    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        return {"ok": False, "error": 'a request is a JSON object with "op"'}
    op, name = request["op"], request.get("name")
    try:
        if op == "status":
            return {"ok": True, "processes": supervisor.status()}
        if op in ("restart", "stop"):
            if not isinstance(name, str):
                return {"ok": False, "error": f'{op} needs "name"'}
            d = supervisor.restart(name) if op == "restart" else supervisor.stop(name)
            return d.addCallback(lambda status: {"ok": True, "process": status})
        if op == "shutdown":
            return supervisor.shutdown().addCallback(lambda _: {"ok": True})
    except SupervisorError as e:
        return {"ok": False, "error": str(e)}
    return {"ok": False, "error": f"unknown op {op!r}: status, restart, stop or shutdown"}


def socket_path(folder: Path) -> Path:
    return Path(folder) / SOCKET


def request(folder: Path, op: str, name: str | None = None, timeout: float = 10.0) -> dict:
    """Send one request to the supervisor of the testbed whose state is in
    ``folder``; its reply, or ControlError."""
    path = socket_path(folder)
    message = {"op": op, **({"name": name} if name is not None else {})}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        directory = None
        try:
            if len(str(path).encode()) > _SUN_PATH_MAX:
                directory = os.open(path.parent, os.O_RDONLY)
                s.connect(f"/proc/self/fd/{directory}/{path.name}")
            else:
                s.connect(str(path))
            s.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError("its supervisor is not running") from None
        except OSError as e:  # socket.timeout is one
            raise ControlError(f"its supervisor did not answer ({e or 'timed out'})") from None
        finally:
            if directory is not None:
                os.close(directory)
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError("its supervisor closed the connection without a reply") from None
    if not reply.get("ok"):
        raise ControlError(reply.get("error") or "refused")
    return reply
