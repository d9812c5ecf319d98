"""Running `ip`, `tc` and `nft`, in the testbed's namespaces only.

The testbed CLI is a plain program (no reactor), so these block.  Every
command that fails raises :class:`ToolFailed` with the command and what
it printed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from typing import Sequence

PREFIX = "seer-"


class ToolFailed(RuntimeError):
    """An `ip`, `tc` or `nft` command that failed (not a SEER command: that is
    seer.client's CommandFailed)."""

    def __init__(self, argv: Sequence[str], output: str) -> None:
        super().__init__(f"`{shlex.join(argv)}` failed: {output.strip() or 'no output'}")
        self.output = output


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float = 30.0) -> str:
    try:
        done = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        raise ToolFailed(argv, f"{argv[0]} is not installed") from None
    if check and done.returncode != 0:
        raise ToolFailed(argv, done.stderr or done.stdout)
    return done.stdout


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    return run(["ip", *(["-n", ns] if ns else []), *args], check=check)


def in_namespace(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def namespaces() -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def add_namespace(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def delete_namespace(name: str) -> None:
    ip("netns", "del", name, check=False)


def can_build() -> str | None:
    """Why testbeds cannot be built here, or None if they can."""
    if os.geteuid() != 0:
        return ("seer testbed needs root (network namespaces, veth pairs, bridges); "
                "without it, use the loopback mode: controller and daemons on 127.0.0.1 "
                "(`make demo` falls back to it, or seer.localrun.LocalExperiment)")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"seer testbed needs `{tool}` (Debian package iproute2); run `make setup` as root"
    probe = f"{PREFIX}probe-{os.getpid()}"
    try:
        add_namespace(probe)
    except ToolFailed as e:
        return f"this machine cannot create network namespaces ({e.output.strip()}); " \
               "use the loopback mode (controller and daemons on 127.0.0.1)"
    finally:
        delete_namespace(probe)
    return None
