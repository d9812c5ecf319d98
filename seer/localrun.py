"""Run a controller and daemons as real processes on 127.0.0.1.

The loopback mode of SEER: one controller and any number of daemons on this
machine, multicast on 127.0.0.1 with TTL 1, each process logging to its own
file.  The demo, the end-to-end tests and the benchmarks use it; an
experimenter can too, to try an experiment before booking machines::

    with LocalExperiment("/tmp/try", ["n1", "n2", "n3"]) as lab:
        with lab.experiment() as exp:
            exp.agent("NOOP", "g").start()

Every process gets SIGTERM when the experiment ends (SIGKILL if it does not
stop within the grace period), whatever happened before.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from seer.protocol import certs as seer_certs
from seer.client import Experiment

EXPERIMENTER = "experimenter"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_group() -> str:
    """A multicast group of the administratively scoped range, per run."""
    return f"239.255.{random.randint(1, 254)}.{random.randint(1, 254)}"


class LocalError(RuntimeError):
    """A local experiment that did not come up; the message has the logs' tails."""


class LocalExperiment:
    def __init__(
        self,
        workdir: str | Path,
        nodes: Iterable[str],
        *,
        certs: str | Path | None = None,
        controller_args: Iterable[str] = (),
        daemon_args: dict[str, list[str]] | None = None,
        common_daemon_args: Iterable[str] = (),
        python: str = sys.executable,
        grace: float = 10.0,
        discover: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = list(nodes)
        self.certs = Path(certs) if certs else self.workdir / "certs"
        self.controller_args = list(controller_args)
        self.daemon_args = daemon_args or {}
        self.common_daemon_args = list(common_daemon_args)
        self.python = python
        self.grace = grace
        #: Daemons started without --controller find it from its PINGs.
        self.discover = discover
        self.port = free_tcp_port()
        self.group = random_group()
        self.group_port = free_udp_port()
        self.controller: subprocess.Popen | None = None
        self.daemons: dict[str, subprocess.Popen] = {}
        self._logs: list[Any] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for `seer` commands and scripts against this experiment."""
        return dict(os.environ, SEER_CONTROLLER=self.address, SEER_CERTS=str(self.certs),
                    SEER_IDENTITY=EXPERIMENTER)

    # -- set-up -------------------------------------------------------------------

    def make_certs(self) -> None:
        directory = seer_certs.CertDirectory(self.certs)
        have = set(directory.nodes())
        if directory.ca.cert.is_file() and set(self.nodes) <= have and \
                EXPERIMENTER in directory.experimenters():
            return
        seer_certs.init(self.certs, [n for n in self.nodes if n not in have], [EXPERIMENTER])

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        self._logs.append(log)
        return subprocess.Popen(
            [self.python, "-m", "seer", *args], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.workdir,
        )

    def start_controller(self, wait: float = 30.0) -> None:
        self.controller = self._spawn("controller", [
            "controller", "--listen", self.address,
            "--group", f"{self.group}:{self.group_port}", "--interface", "127.0.0.1",
            "--certs", str(self.certs), "--state-dir", str(self.workdir / "state" / "controller"),
            *self.controller_args,
        ])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.controller.poll() is not None:
                raise LocalError(f"the controller exited ({self.controller.returncode}):\n"
                                 + self.log_tail("controller"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise LocalError(f"the controller did not listen within {wait} s:\n"
                         + self.log_tail("controller"))

    def start_daemon(self, name: str) -> None:
        where = [] if self.discover else ["--controller", self.address]
        self.daemons[name] = self._spawn(name, [
            "daemon", "--name", name, *where,
            "--group", f"{self.group}:{self.group_port}", "--interface", "127.0.0.1",
            "--certs", str(self.certs), "--workdir", str(self.workdir / "nodes" / name),
            # Every loopback node's experiment address is 127.0.0.1, so its
            # traffic stays on this machine; per-node ports keep servers apart.
            "--addresses", "127.0.0.1",
            *self.common_daemon_args, *self.daemon_args.get(name, []),
        ])

    def start(self, timeout: float = 60.0) -> LocalExperiment:
        self.make_certs()
        self.start_controller()
        for name in self.nodes:
            self.start_daemon(name)
        self.wait_registered(timeout=timeout)
        return self

    def wait_registered(self, names: list[str] | None = None, timeout: float = 60.0) -> float:
        """Wait until the nodes are up; returns the seconds it took."""
        names = list(names or self.nodes)
        started = time.monotonic()
        with self.experiment() as exp:
            reply = exp.wait_for_nodes(names, timeout)
        if not reply.get("ok"):
            tails = "\n".join(f"--- {n}\n{self.log_tail(n)}" for n in reply["missing"][:3])
            raise LocalError(f"nodes not up after {timeout} s: {', '.join(reply['missing'])}\n{tails}")
        return time.monotonic() - started

    def experiment(self, **options: Any) -> Experiment:
        return Experiment(self.address, self.certs, EXPERIMENTER, **options)

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run `seer ARGS` against this experiment; output captured as text."""
        return subprocess.run([self.python, "-m", "seer", *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    # -- tear-down ------------------------------------------------------------------

    def kill_controller(self, sig: int = signal.SIGKILL) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.send_signal(sig)
            self.controller.wait(timeout=self.grace)

    def processes(self) -> list[subprocess.Popen]:
        procs = list(self.daemons.values())
        if self.controller is not None:
            procs.append(self.controller)
        return procs

    def stop(self) -> dict[str, int]:
        """SIGTERM every process, SIGKILL what is still there after the grace
        period; returns each process's exit code."""
        for proc in self.processes():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        codes = {}
        for name, proc in list(self.daemons.items()) + [("controller", self.controller)]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            codes[name] = proc.returncode
        for log in self._logs:
            log.close()
        self._logs.clear()
        return codes

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalExperiment:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()
