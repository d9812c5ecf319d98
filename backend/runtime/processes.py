"""Real OS processes for agents: started, logged, counted, and all stopped.

Every process an agent starts goes through ``reactor.spawnProcess`` (never a
blocking ``subprocess`` call in the reactor thread), in a session and
process group of its own (``setsid``, which execs in place so the PID stays
the one Twisted watches). Its output goes, line by line with its name and
PID, to the agent's log file; its exit code is counted and handed to an
optional callback.

Stopping sends SIGTERM to each process *group* -- so a shell's children go
too -- then SIGKILL after a grace period, and fires once every process has
been reaped: no orphan, no zombie. Each process also carries
``SEER_PROCESS_TAG`` in its environment; :func:`sweep` finds anything with a
tag that escaped its group (a double-forking daemon, a process whose parent
was killed) and kills it.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

TAG_VARIABLE = "SEER_PROCESS_TAG"
GRACE = 3.0
#: Seconds a dead process's pipes may stay open (held by a stray child).
PIPE_LINGER = 1.0

_SETSID = shutil.which("setsid") or shutil.which("setsid", path="/usr/bin:/bin")


def in_own_session(argv: list[str]) -> list[str]:
    """argv run in a new session and process group, keeping its PID."""
    if _SETSID:
        return [_SETSID, *argv]
    # Without util-linux: a tiny Python shim that does the same.
    return [sys.executable, "-c",
            "import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])", *argv]


class ManagedProcess(ProcessProtocol):
    """One child: its output to the log, its end to the manager."""

    def __init__(self, manager: ProcessManager, name: str,
                 on_line: Callable[[int, bytes], bool] | None = None) -> None:
        self.manager = manager
        self.name = name
        #: Sees each output line first; returning True keeps it out of the log.
        self.on_line = on_line
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.ended: Deferred = Deferred()
        self._partial = {1: b"", 2: b""}

    def connectionMade(self) -> None:
        self.pid = self.transport.pid
        self.transport.closeStdin()

    def childDataReceived(self, fd: int, data: bytes) -> None:
        lines = (self._partial.get(fd, b"") + data).split(b"\n")
        self._partial[fd] = lines.pop()
        for line in lines:
            self.manager.output(self, fd, line)

    def processExited(self, reason: Failure) -> None:
        # The process is gone and reaped.  Its pipes may outlive it when a
        # child it left behind holds them: give remaining output a moment,
        # then close them, so that processEnded comes all the same.
        if reason.check(ProcessDone):
            self.exit_code = 0
        elif reason.check(ProcessTerminated):
            self.exit_code = reason.value.exitCode
            self.signal = reason.value.signal
        self._pipe_closer = self.manager.reactor.callLater(PIPE_LINGER, self._close_pipes)

    def _close_pipes(self) -> None:
        self._pipe_closer = None
        self.transport.loseConnection()

    def processEnded(self, reason: Failure) -> None:
        """Reaped and every line of output logged: now it has ended."""
        closer = getattr(self, "_pipe_closer", None)
        if closer is not None and closer.active():
            closer.cancel()
        if self.exit_code is None and self.signal is None:
            self.processExited(reason)
            self._pipe_closer.cancel()
        for fd, rest in self._partial.items():
            if rest:
                self.manager.output(self, fd, rest)
                self._partial[fd] = b""
        self.manager.ended(self)
        self.ended.callback(self)

    @property
    def running(self) -> bool:
        return not self.ended.called

    def signal_group(self, signum: int) -> None:
        """Signal this process's group (itself and anything it started)."""
        if self.running and self.pid is not None:
            _kill_group(self.pid, signum)

    def describe_exit(self) -> str:
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exit code {self.exit_code}"


class ProcessManager:
    """The processes of one agent instance (or one traffic controller)."""

    def __init__(
        self,
        reactor: Any,
        log_path: Path | str,
        tag: str,
        on_exit: Callable[[ManagedProcess], None] | None = None,
        on_output: Callable[[ManagedProcess, int, bytes], bool] | None = None,
    ) -> None:
        self.reactor = reactor
        self.log_path = Path(log_path)
        self.tag = tag
        self.on_exit = on_exit
        self.on_output = on_output
        self.running: dict[int, ManagedProcess] = {}
        self.counters: Counter[str] = Counter()
        self._log_file: Any = None

    def _log(self) -> Any:
        if self._log_file is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab", buffering=0)
        return self._log_file

    def write_log(self, text: str) -> None:
        self._log().write(self._stamp() + text.encode(errors="replace") + b"\n")

    def _stamp(self) -> bytes:
        """The log line's time, to the millisecond (local time with its offset),
        so that inter-arrival and think times can be read from the log alone."""
        now = self.reactor.seconds()
        whole = time.localtime(now)
        millis = min(999, int((now % 1) * 1000))
        return (time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{millis:03d}"
                + time.strftime("%z ", whole)).encode()

    def spawn(self, argv: list[str], name: str | None = None, env: dict[str, str] | None = None,
              path: str | None = None,
              on_line: Callable[[int, bytes], bool] | None = None) -> ManagedProcess:
        """Start ``argv`` in its own process group; output to the agent log."""
        if not argv:
            raise ValueError("spawn needs a command")
        program = _which(argv[0])
        if program is None:
            raise FileNotFoundError(f"command not found: {argv[0]}")
        process = ManagedProcess(self, name or os.path.basename(argv[0]), on_line)
        full = in_own_session([program, *argv[1:]])
        environment = dict(os.environ if env is None else env)
        environment[TAG_VARIABLE] = self.tag
        self.reactor.spawnProcess(process, full[0], full, env=environment, path=path)
        self.running[process.pid] = process
        self.counters["launched"] += 1
        return process

    def output(self, process: ManagedProcess, fd: int, line: bytes) -> None:
        if process.on_line is not None and process.on_line(fd, line):
            return
        if self.on_output is not None and self.on_output(process, fd, line):
            return
        stream = "out" if fd == 1 else "err"
        self._log().write(self._stamp() + f"[{process.name} {process.pid} {stream}] ".encode()
                          + line + b"\n")

    def ended(self, process: ManagedProcess) -> None:
        self.running.pop(process.pid, None)
        if process.signal is not None:
            self.counters["killed"] += 1
        elif process.exit_code == 0:
            self.counters["exited_ok"] += 1
        else:
            self.counters["exited_error"] += 1
        self.write_log(f"[{process.name} {process.pid}] ended: {process.describe_exit()}")
        if self.on_exit is not None:
            self.on_exit(process)

    def signal_all(self, signum: int) -> None:
        for process in list(self.running.values()):
            _kill_group(process.pid, signum)

    def terminate_all(self, grace: float = GRACE) -> Deferred:
        """SIGTERM every group, SIGKILL after ``grace``; fires when all are reaped."""
        waiting = [p.ended for p in self.running.values()]
        if not waiting:
            return succeed(None)
        self.signal_all(signal.SIGTERM)
        timer = self.reactor.callLater(grace, self.signal_all, signal.SIGKILL)

        def done(_: Any) -> None:
            if timer.active():
                timer.cancel()

        return DeferredList(waiting).addCallback(done)

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@functools.lru_cache(maxsize=256)
def _which(program: str) -> str | None:
    # Cached: a traffic controller launching hundreds of clients a second
    # should not search PATH for each.
    return program if "/" in program else shutil.which(program)


def _kill_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
        return
    except (ProcessLookupError, PermissionError):
        # Not (yet) a group leader: just after fork, before setsid ran.
        pass
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def tagged_processes(tag_prefix: str, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of processes whose SEER_PROCESS_TAG is ``tag_prefix`` or below it.

    Tags are paths (node/daemon-pid/TYPE/group/...) and match whole parts:
    the prefix ``n1/7/WEB/g`` takes ``n1/7/WEB/g/clients`` but not the
    processes of group ``g2``.  Blocking (reads /proc): run it in a thread
    from the reactor.
    """
    marker = f"{TAG_VARIABLE}={tag_prefix.rstrip('/')}".encode()
    below = marker + b"/"
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(var == marker or var.startswith(below) for var in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def sweep(tag_prefix: str, signum: int = signal.SIGKILL) -> list[int]:
    """Kill every process whose tag is ``tag_prefix`` or below it; return them."""
    killed = []
    for pid in tagged_processes(tag_prefix):
        try:
            os.kill(pid, signum)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


def wait_for_port(reactor: Any, host: str, port: int, timeout: float = 10.0,
                  interval: float = 0.05) -> Deferred:
    """Fires once host:port accepts a TCP connection; TimeoutError after ``timeout``."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
    from twisted.internet.protocol import Factory, Protocol

    endpoint_type = TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint
    deadline = reactor.seconds() + timeout
    result: Deferred = Deferred()

    def attempt() -> None:
        d = endpoint_type(reactor, host, port, timeout=max(0.1, interval * 10)).connect(
            Factory.forProtocol(Protocol))
        d.addCallbacks(connected, retry)

    def connected(protocol: Any) -> None:
        protocol.transport.loseConnection()
        result.callback(None)

    def retry(_: Failure) -> None:
        if reactor.seconds() >= deadline:
            result.errback(TimeoutError(f"nothing listens on {host}:{port} after {timeout} s"))
        else:
            reactor.callLater(interval, attempt)

    attempt()
    return result
