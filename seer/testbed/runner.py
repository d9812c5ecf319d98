"""Bringing a testbed up (network, certificates, processes) and down again.

`up` builds the network, makes the certificates, starts the controller in
its namespace, the relay in the host's, a daemon in every node's namespace
(joined to the multicast group on its own control interface), and waits
until every node has registered -- with a progress line, and an error that
names the nodes that did not come up (with the end of their logs).  Every
process carries ``SEER_TESTBED=<name>`` so `down` finds it even after a
crash.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from seer.protocol import certs
from seer.testbed import build, state
from seer.testbed.netns import in_namespace
from seer.testbed.topology import Topology

CONTROL_PORT = 7700
GROUP_PORT = 7701
EXPERIMENTER = "experimenter"


class UpError(RuntimeError):
    """The testbed did not come up; it was taken down again."""


def group_for(name: str) -> str:
    """A multicast group of its own per testbed name."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"239.255.{digest[0]}.{max(1, digest[1])}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launcher:
    """Starts the testbed's processes, each logging to its own file."""

    def __init__(self, topology: Topology, folder: Path, python: str = sys.executable) -> None:
        self.topology = topology
        self.folder = folder
        self.python = python
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, SEER_TESTBED=topology.name, PYTHONUNBUFFERED="1")

    def spawn(self, name: str, argv: list[str]) -> int:
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=self.env,
                                       start_new_session=True, cwd=self.folder)
        return process.pid

    def seer(self, ns: str | None, name: str, *args: str) -> int:
        argv = [self.python, "-m", "seer", *args]
        return self.spawn(name, in_namespace(ns, argv) if ns else argv)

    def log_tail(self, name: str, lines: int = 8) -> str:
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(errors="replace")
                             .splitlines()[-lines:])
        except OSError:
            return "(no log)"


def up(topology: Topology, *, control_loss: float = 0.0, timeout: float = 120.0,
       daemon_args: list[str] | None = None,
       progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Build and start the testbed; returns its state (also in testbed.json)."""
    name = topology.name
    if build.testbed_namespaces(name) or build.processes_in(name):
        raise UpError(f"a testbed called {name!r} already exists (or its remains do); "
                      f"run `seer testbed down {name}` first, or choose another --name")
    folder = state.directory(name)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    build.build_network(topology, progress)
    try:
        return _start(topology, folder, control_loss, timeout, daemon_args or [], progress,
                      started)
    except BaseException:
        down(name)
        raise


def _start(topology: Topology, folder: Path, control_loss: float, timeout: float,
           daemon_args: list[str], progress: Callable[[str], None], started: float) -> dict[str, Any]:
    name = topology.name
    nodes = topology.node_names()
    progress("certificates")
    cert_dir = folder / "certs"
    certs.init(cert_dir, nodes, [EXPERIMENTER], experiment=name,
               controller_addresses=[topology.controller_address])
    (folder / "nodes.txt").write_text("\n".join(nodes) + "\n")
    if control_loss:
        build.set_control_loss(name, control_loss)
    launcher = Launcher(topology, folder)
    group = f"{group_for(name)}:{GROUP_PORT}"
    control = f"{topology.controller_address}:{CONTROL_PORT}"
    progress("controller")
    pids = {"controller": launcher.seer(
        build.controller_ns(name), "controller", "controller", "--listen", control,
        "--group", group, "--interface", "ctl0", "--certs", str(cert_dir),
        "--state-dir", str(folder / "controller"), "--nodefile", str(folder / "nodes.txt"),
        "--required", ",".join(nodes))}
    relay_port = _free_port()
    pids["relay"] = launcher.spawn("relay", [
        launcher.python, "-m", "seer.testbed.relay", "--listen", str(relay_port),
        "--netns", build.controller_ns(name), "--to", control])
    client = {"controller": f"127.0.0.1:{relay_port}", "certs": str(cert_dir),
              "identity": EXPERIMENTER}
    progress(f"{len(nodes)} daemons")
    for node in nodes:
        pids[node] = launcher.seer(
            build.node_ns(name, node), node, "daemon", "--name", node, "--controller", control,
            "--group", group, "--interface", "ctl0", "--certs", str(cert_dir),
            "--workdir", str(folder / "nodes" / node),
            *[f"--attributes={k}={v}" for k, v in topology.nodes[node].attributes.items()],
            *[f"--labels={label}" for label in topology.nodes[node].labels],
            *daemon_args)
    took = _wait_registered(topology, client, launcher, timeout, progress, started)
    testbed = {
        "name": name, "up": True, "client": client, "pids": pids, "group": group,
        "control": control, "control_loss": control_loss, "folder": str(folder),
        "namespaces": build.testbed_namespaces(name), "nodes": nodes,
        "addresses": {n: topology.address_of(n) for n in nodes},
        "registered_in": round(took, 2), "created": time.time(),
    }
    state.write(name, testbed)
    return testbed


def _wait_registered(topology: Topology, client: dict[str, str], launcher: Launcher,
                     timeout: float, progress: Callable[[str], None], started: float) -> float:
    from seer.client import Experiment, SeerError

    nodes = topology.node_names()
    deadline = time.monotonic() + timeout
    experiment = None
    while experiment is None:
        try:
            experiment = Experiment(client["controller"], client["certs"], client["identity"])
        except SeerError:
            if time.monotonic() > deadline:
                raise UpError("the controller did not answer within "
                              f"{timeout:.0f} s:\n{launcher.log_tail('controller')}") from None
            time.sleep(0.1)
    with experiment:
        while True:
            table = experiment.node_table()
            up_nodes = [n["name"] for n in table["nodes"] if n["up"]]
            progress(f"registered {len(up_nodes)}/{len(nodes)} nodes "
                     f"({time.monotonic() - started:.1f} s)")
            if len(up_nodes) == len(nodes):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                missing = sorted(set(nodes) - set(up_nodes))
                tails = "\n".join(f"--- {n}:\n{launcher.log_tail(n)}" for n in missing[:3])
                raise UpError(f"not registered after {timeout:.0f} s: {', '.join(missing)}\n{tails}")
            time.sleep(0.2)


def down(name: str) -> dict[str, int]:
    """Stop every process and remove every namespace of the testbed.

    Safe to run twice, and after a crash: nothing is assumed to exist.
    """
    previous = state.read(name)
    if previous is not None:
        previous["up"] = False
        state.write(name, previous)
    stopped = build.stop_processes(name)
    removed = build.destroy_network(name)
    folder = state.directory(name)
    if folder.exists():
        _remove_tree(folder)
    return {"processes": stopped, "namespaces": len(removed)}


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
