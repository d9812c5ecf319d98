"""Bringing a testbed up (network, certificates, its supervisor) and down again.

`up` claims the testbed's state folder, builds the network, makes the
certificates and writes the plan of the testbed's processes -- the
controller in its namespace, the relay in the host's, a daemon in every
node's namespace (joined to the multicast group on its own control
interface) -- then starts the supervisor (:mod:`seer.testbed.supervise`),
which runs them, restarts any that dies and records each one's PID and
start time.  It waits until every node has registered, with a progress line
and an error that names the nodes that did not come up (with the end of
their logs).

`down` stops exactly what `up` started: it asks the supervisor to stop
everything (it stops its processes, then whatever they left behind); if the
supervisor is gone, it stops the processes recorded in the state itself --
each only while its PID still shows the recorded start time
(:mod:`seer.testbed.pids`).  Then it removes exactly the testbed's
namespaces.  Nothing is ever found by name or by environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from seer.protocol import certs
from seer.testbed import build, control, pids, state, statsplan
from seer.testbed.topology import Topology, describe

CONTROL_PORT = 7700
GROUP_PORT = 7701
EXPERIMENTER = "experimenter"
#: Files of the state folder (besides testbed.json).
PLAN, PROCESSES, TOPOLOGY = "plan.json", "processes.json", "topology.toml"
#: Seconds a process has between SIGTERM and SIGKILL.
GRACE = 5.0


class UpError(RuntimeError):
    """The testbed did not come up; it was taken down again."""


class NameTaken(UpError):
    """A testbed of that name exists (or is being made); nothing was done."""


def group_for(name: str) -> str:
    """A multicast group of its own per testbed name."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"239.255.{digest[0]}.{max(1, digest[1])}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(folder: Path, name: str, lines: int = 8) -> str:
    try:
        return "\n".join((folder / "logs" / f"{name}.log").read_text(errors="replace")
                         .splitlines()[-lines:])
    except OSError:
        return "(no log)"


def up(topology: Topology, *, control_loss: float = 0.0, timeout: float = 120.0,
       daemon_args: list[str] | None = None, controller_args: list[str] | None = None,
       topology_text: str | None = None,
       backoff: dict[str, float] | None = None,
       progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Build and start the testbed; returns its state (also in testbed.json).
    ``daemon_args`` and ``controller_args`` are extra flags for every daemon
    and for the controller (a test may shorten the controller's
    --retire-after, say)."""
    name = topology.name
    folder = _claim(name)
    started = time.monotonic()
    testbed: dict[str, Any] = {
        "name": name, "up": False, "folder": str(folder), "created": time.time(),
        "namespaces": build.planned_namespaces(topology), "nodes": topology.node_names(),
        "supervisor": None, "topology": describe(topology),
    }
    state.write(name, testbed)  # from now on `down` finds whatever gets made
    try:
        build.build_network(topology, progress)
        return _start(topology, testbed, folder, control_loss, timeout, daemon_args or [],
                      topology_text, backoff or {}, progress, started,
                      controller_args=controller_args or [])
    except BaseException:
        down(name)
        raise


def _claim(name: str) -> Path:
    """The testbed's new state folder; UpError if the name is taken."""
    folder = state.directory(name)
    if build.testbed_namespaces(name) or processes(name):
        raise NameTaken(f"a testbed called {name!r} already exists (or its remains do); "
                        f"run `seer testbed down {name}` first, or choose another --name")
    if folder.exists():
        # A state folder with nothing alive and nothing in the kernel: remains of
        # a testbed that is gone.  Only our own files are in it.
        shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        raise NameTaken(f"another `seer testbed up` of {name!r} is under way") from None
    (folder / "logs").mkdir()
    return folder


def _programs(topology: Topology, folder: Path, relay_port: int, group: str, control: str,
              daemon_args: list[str],
              controller_args: list[str] | None = None) -> list[dict[str, Any]]:
    """What the supervisor runs: argv and log of the controller, relay and daemons."""
    name = topology.name
    python, cert_dir, nodes = sys.executable, folder / "certs", topology.node_names()
    ip = shutil.which("ip") or "ip"

    def seer(ns: str, process: str, *args: str) -> dict[str, Any]:
        # `ip netns exec` execs in place: the PID spawned is the Python process.
        argv = [ip, "netns", "exec", ns, python, "-m", "seer", *args]
        return {"name": process, "argv": argv, "log": str(folder / "logs" / f"{process}.log"),
                "cwd": str(folder)}

    programs = [seer(build.controller_ns(name), "controller", "controller", "--listen", control,
                     "--group", group, "--interface", "ctl0", "--certs", str(cert_dir),
                     "--state-dir", str(folder / "controller"),
                     "--nodefile", str(folder / "nodes.txt"), "--required", ",".join(nodes),
                     *(controller_args or [])),
                {"name": "relay", "log": str(folder / "logs" / "relay.log"), "cwd": str(folder),
                 "argv": [python, "-m", "seer.testbed.relay", "--listen", str(relay_port),
                          "--netns", build.controller_ns(name), "--to", control]}]
    # The daemons are not told where the controller is: they find it from its
    # PINGs on the group (backend/node/discovery.py), as on a real testbed.
    for node in nodes:
        programs.append(seer(
            build.node_ns(name, node), node, "daemon", "--name", node,
            "--group", group, "--interface", "ctl0", "--certs", str(cert_dir),
            "--workdir", str(folder / "nodes" / node),
            *[f"--attributes={k}={v}" for k, v in topology.nodes[node].attributes.items()],
            *[f"--labels={label}" for label in topology.nodes[node].labels],
            *daemon_args))
    return programs


def _start(topology: Topology, testbed: dict[str, Any], folder: Path, control_loss: float,
           timeout: float, daemon_args: list[str], topology_text: str | None,
           backoff: dict[str, float], progress: Callable[[str], None],
           started: float, controller_args: list[str] | None = None) -> dict[str, Any]:
    name = topology.name
    nodes = topology.node_names()
    progress("certificates")
    cert_dir = folder / "certs"
    certs.init(cert_dir, nodes, [EXPERIMENTER], experiment=name,
               controller_addresses=[topology.controller_address])
    (folder / "nodes.txt").write_text("\n".join(nodes) + "\n")
    if topology_text is not None:
        (folder / TOPOLOGY).write_text(topology_text)
    if control_loss:
        build.set_control_loss(name, control_loss)
    group = f"{group_for(name)}:{GROUP_PORT}"
    control_address = f"{topology.controller_address}:{CONTROL_PORT}"
    relay_port = _free_port()
    http_port = _free_port()  # the relay's, for the controller's /metrics
    plan = {"programs": statsplan.apply(_programs(topology, folder, relay_port, group,
                                                  control_address, daemon_args,
                                                  controller_args),
                                        topology, folder, http_port, control_address,
                                        EXPERIMENTER),
            "backoff": backoff, "grace": GRACE}
    (folder / PLAN).write_text(json.dumps(plan, indent=2))

    progress(f"supervisor: controller, relay and {len(nodes)} daemons")
    with open(folder / "logs" / "supervisor.log", "ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "seer.testbed.supervise", str(folder)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True, cwd=folder)
    # Recorded before anything else can go wrong: this record is how `down` finds it.
    testbed["supervisor"] = pids.Record("supervisor", supervisor.pid,
                                        pids.start_time(supervisor.pid)).to_json()
    client = {"controller": f"127.0.0.1:{relay_port}", "certs": str(cert_dir),
              "identity": EXPERIMENTER}
    testbed.update(client=client, group=group, control=control_address,
                   control_loss=control_loss, relay_port=relay_port, **statsplan.state(http_port),
                   addresses={n: topology.address_of(n) for n in nodes})
    state.write(name, testbed)
    took = _wait_registered(topology, client, folder, supervisor, timeout, progress, started)
    testbed.update(up=True, registered_in=round(took, 2),
                   pids={p["name"]: p["pid"] for p in _table(name).values() if p.get("pid")})
    state.write(name, testbed)
    return testbed


def _wait_registered(topology: Topology, client: dict[str, str], folder: Path,
                     supervisor: subprocess.Popen, timeout: float,
                     progress: Callable[[str], None], started: float) -> float:
    from seer.client import Experiment, SeerError

    nodes = topology.node_names()
    deadline = time.monotonic() + timeout

    def supervisor_alive() -> None:
        if supervisor.poll() is not None:
            raise UpError(f"the testbed's supervisor exited ({supervisor.returncode}):\n"
                          f"{log_tail(folder, 'supervisor')}")

    experiment = None
    while experiment is None:
        supervisor_alive()
        try:
            experiment = Experiment(client["controller"], client["certs"], client["identity"])
        except SeerError:
            if time.monotonic() > deadline:
                raise UpError("the controller did not answer within "
                              f"{timeout:.0f} s:\n{log_tail(folder, 'controller')}") from None
            time.sleep(0.1)
    with experiment:
        while True:
            supervisor_alive()
            table = experiment.node_table()
            up_nodes = [n["name"] for n in table["nodes"] if n["up"]]
            progress(f"registered {len(up_nodes)}/{len(nodes)} nodes "
                     f"({time.monotonic() - started:.1f} s)")
            if len(up_nodes) == len(nodes):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                missing = sorted(set(nodes) - set(up_nodes))
                tails = "\n".join(f"--- {n}:\n{log_tail(folder, n)}" for n in missing[:3])
                raise UpError(f"not registered after {timeout:.0f} s: {', '.join(missing)}\n{tails}")
            time.sleep(0.2)


# -- what runs --------------------------------------------------------------------------


def _written(name: str) -> dict[str, Any]:
    """processes.json as the supervisor last wrote it ({} if there is none)."""
    try:
        data = json.loads((state.directory(name) / PROCESSES).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _table(name: str) -> dict[str, dict[str, Any]]:
    """The supervisor's process table as last written."""
    table = _written(name).get("processes")
    return table if isinstance(table, dict) else {}


def recorded(name: str) -> list[pids.Record]:
    """Every process record the testbed's state holds: the supervisor first
    (as `up` recorded it, and as it recorded itself), then what it runs."""
    testbed = state.read(name) or {}
    records = [pids.Record.from_json(testbed.get("supervisor")),
               pids.Record.from_json(_written(name).get("supervisor"))]
    records += [pids.Record.from_json(entry) for entry in _table(name).values()]
    seen: set[int] = set()
    unique = []
    for r in records:
        if r is not None and r.pid not in seen:
            seen.add(r.pid)
            unique.append(r)
    return unique


def processes(name: str) -> list[pids.Record]:
    """The testbed's processes that are running: the recorded ones still
    alive (same PID, same start time) and their descendants."""
    alive = [r for r in recorded(name) if pids.is_running(r)]
    known = {r.pid for r in alive}
    return alive + [r for r in pids.descendants(known) if r.pid not in known]


def supervisor_status(name: str) -> dict[str, dict[str, Any]] | None:
    """The live process table from the supervisor; None if it does not answer."""
    try:
        return control.request(state.directory(name), "status", timeout=5.0)["processes"]
    except control.ControlError:
        return None


def process_table(name: str) -> dict[str, dict[str, Any]]:
    """Each program's state: the supervisor's live view, or, without a
    supervisor, the last table it wrote with every process checked."""
    live = supervisor_status(name)
    if live is not None:
        return live
    table = {}
    for program, entry in _table(name).items():
        record = pids.Record.from_json(entry)
        entry = dict(entry)
        if record is None or not pids.is_running(record):
            entry.update(state="gone", pid=None)
        else:
            entry["state"] = "running (unsupervised)"
        table[program] = entry
    return table


# -- down -------------------------------------------------------------------------------


def down(name: str, grace: float = GRACE) -> dict[str, int]:
    """Stop every process the testbed started and remove its namespaces.

    Safe to run twice, and after a crash: nothing is assumed to exist.
    """
    previous = state.read(name)
    if previous is not None:
        previous["up"] = False
        state.write(name, previous)
    folder = state.directory(name)
    running = processes(name)
    supervisor = next((r for r in running if r.name == "supervisor"), None)
    if supervisor is not None:
        try:
            # It stops its processes and what they left behind, then exits.
            control.request(folder, "shutdown", timeout=2 * grace + 10)
        except control.ControlError:
            pass
        deadline = time.monotonic() + 5.0
        while pids.is_running(supervisor) and time.monotonic() < deadline:
            time.sleep(0.05)
    pids.stop([r for r in running if pids.is_running(r)], grace)  # whatever is left
    removed = build.destroy_network(name)
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    return {"processes": len(running), "namespaces": len(removed)}


def exists(name: str) -> bool:
    """Whether anything of testbed ``name`` is here: state, namespaces or processes."""
    return state.read(name) is not None or bool(build.testbed_namespaces(name)) \
        or state.directory(name).exists()


def known() -> list[str]:
    """Every testbed with state or namespaces on this machine."""
    return sorted(set(state.known()) | build.testbeds_in_kernel())
