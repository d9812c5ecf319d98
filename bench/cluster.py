"""A controller and N daemons on 127.0.0.1 for benchmarks: daemon processes,
or "simulated" nodes -- many NodeDaemon instances per process."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.common import AGENTS
from seer.localrun import LocalExperiment


class Cluster(LocalExperiment):
    def __init__(self, workdir: Path | str, n: int, *, per_process: int = 0,
                 daemon_args: list[str] | None = None,
                 controller_args: list[str] | None = None) -> None:
        self.per_process = per_process
        self.extra = list(daemon_args or [])
        super().__init__(workdir, [f"n{i}" for i in range(1, n + 1)],
                         common_daemon_args=["--agent-dirs", str(AGENTS), *self.extra],
                         controller_args=controller_args or [], grace=20.0)

    def start(self, timeout: float = 300.0) -> Cluster:
        started = time.monotonic()
        self.make_certs()
        self.start_controller()
        if self.per_process:
            for k in range(0, len(self.nodes), self.per_process):
                chunk = self.nodes[k:k + self.per_process]
                self.daemons[f"group{k // self.per_process}"] = self._spawn(
                    f"group{k // self.per_process}",
                    ["-c", "from bench.multidaemon import main; raise SystemExit(main())",
                     "--names", ",".join(chunk), "--controller", self.address,
                     "--group", f"{self.group}:{self.group_port}", "--certs", str(self.certs),
                     "--workdir", str(self.workdir / "nodes"), "--agent-dirs", str(AGENTS),
                     *self.extra])
        else:
            for name in self.nodes:
                self.start_daemon(name)
        self.registered_in = self.wait_registered(timeout=timeout)
        self.up_after = time.monotonic() - started
        return self

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        if args[:1] == ["-c"]:  # a multidaemon process, not a `seer` command
            log = open(self.workdir / f"{name}.log", "ab")
            self._logs.append(log)
            return subprocess.Popen([self.python, *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=Path(__file__).resolve().parent.parent)
        return super()._spawn(name, args)
