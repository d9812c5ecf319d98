"""Fake child processes: a reactor that records spawns and lets the test play them.

:class:`FakeProcessReactor` is :class:`~seer.testing.network.FakeReactor`
(a ``MemoryReactorClock`` with multicast) that also implements
``spawnProcess``, in the shape of Twisted's process monitor tests and
buildbot's fake process utilities: no process is started, each spawn is
recorded as a :class:`FakeProcess`, and the test says what the "process"
prints (:meth:`FakeProcess.output`) and how it ends
(:meth:`FakeProcess.exit`), with the order of callbacks a real
``ProcessProtocol`` sees -- ``connectionMade`` inside ``spawnProcess``,
``processExited`` when it is reaped, ``processEnded`` once its pipes are
closed too.  Timers run on the reactor's clock: a test of a grace period
advances the clock, it does not wait.

Signals.  :mod:`backend.runtime.processes` signals a whole process group
with ``os.killpg`` rather than through the transport.  So that a fake PID
can never name a real process, fake PIDs start above Linux's largest
possible PID (``PID_MAX_LIMIT``, 2**22); and while a FakeProcessReactor
exists, the group-kill function of that module is wrapped so that a signal
to a fake PID goes to the fake process and any other PID to the real
``os.killpg`` as before.  A fake process dies of a signal (one reactor turn
later, as a real one would) unless the test told it to ignore that signal;
SIGKILL cannot be ignored.

``getThreadPool`` and ``callFromThread`` run thread work synchronously and
its result on the next turn, so ``deferToThreadPool`` works on the clock.
"""

from __future__ import annotations

import itertools
import os
import signal as signals
from typing import Any, Callable

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure

from seer.testing.network import FakeReactor

#: Linux never hands out a PID above 2**22 (PID_MAX_LIMIT): fake PIDs start there.
FAKE_PID_BASE = 2**22 + 1

_SIGNAL_NAMES = {"TERM": signals.SIGTERM, "KILL": signals.SIGKILL, "INT": signals.SIGINT,
                 "HUP": signals.SIGHUP}

# fake PID -> FakeProcess, over every FakeProcessReactor alive
_fake_pids: dict[int, FakeProcess] = {}
_pid_numbers = itertools.count(FAKE_PID_BASE)


class FakeProcess:
    """One recorded spawn: what it was started with, and the test's controls.

    It is also the transport its ``ProcessProtocol`` talks to (``pid``,
    ``closeStdin``, ``write``, ``signalProcess``, ``loseConnection``).
    """

    def __init__(self, reactor: FakeProcessReactor, protocol: Any, executable: str,
                 args: list[str], env: dict[str, str] | None, path: str | None) -> None:
        self.reactor = reactor
        self.protocol = protocol
        self.executable = executable
        self.args = list(args)
        self.env = dict(env or {})
        self.path = path
        self.pid = next(_pid_numbers)
        #: Signals received, in order (numbers).
        self.signals: list[int] = []
        #: Signals this process survives; see :meth:`ignore`.
        self.ignored: set[int] = set()
        #: What the protocol wrote to the child's stdin.
        self.stdin: list[bytes] = []
        #: Called with each write to stdin as it happens (a fake program reading it).
        self.on_stdin: Callable[[bytes], None] | None = None
        self.open_fds = {0, 1, 2}
        self.reason: Failure | None = None
        self.ended = False

    # -- what the protocol calls (IProcessTransport) ----------------------------

    def closeStdin(self) -> None:
        self.closeChildFD(0)

    def closeStdout(self) -> None:
        self.closeChildFD(1)

    def closeStderr(self) -> None:
        self.closeChildFD(2)

    def closeChildFD(self, fd: int) -> None:
        if fd in self.open_fds:
            self.open_fds.discard(fd)
            self.protocol.childConnectionLost(fd)
            self._maybe_ended()

    def writeToChild(self, fd: int, data: bytes) -> None:
        if fd == 0 and 0 in self.open_fds:
            self.stdin.append(data)
            if self.on_stdin is not None:
                self.on_stdin(data)

    def write(self, data: bytes) -> None:
        self.writeToChild(0, data)

    def writeSequence(self, data: list[bytes]) -> None:
        for chunk in data:
            self.write(chunk)

    def loseConnection(self) -> None:
        """Close every pipe (a real transport does the same)."""
        for fd in sorted(self.open_fds):
            self.closeChildFD(fd)

    def signalProcess(self, signal_id: int | str) -> None:
        number = _SIGNAL_NAMES[signal_id] if isinstance(signal_id, str) else int(signal_id)
        self.receive_signal(number)

    # -- the test's side ------------------------------------------------------------

    @property
    def exited(self) -> bool:
        """Reaped (processExited has been called)."""
        return self.reason is not None

    def runs(self, program: str) -> bool:
        """Whether ``program`` (a name or a path) is one of the argv words."""
        return any(a == program or os.path.basename(a) == program for a in self.args)

    def output(self, data: bytes, fd: int = 1) -> None:
        """The process writes ``data`` on ``fd`` (1 stdout, 2 stderr)."""
        if fd not in self.open_fds:
            raise RuntimeError(f"fd {fd} of fake process {self.pid} is closed")
        self.protocol.childDataReceived(fd, data)

    def exit(self, code: int = 0, *, signal: int | None = None,
             pipes_open: bool = False) -> None:
        """The process ends with ``code`` (or is killed by ``signal``) and is reaped.

        Its pipes close with it unless ``pipes_open`` (a child it left behind
        holds them): then ``processEnded`` waits for :meth:`close_pipes` or
        for the protocol to close them.
        """
        if self.exited:
            raise RuntimeError(f"fake process {self.pid} has already exited")
        if signal is None and code == 0:
            self.reason = Failure(ProcessDone(0))
        else:
            self.reason = Failure(ProcessTerminated(None if signal is not None else code,
                                                    signal))
        self.protocol.processExited(self.reason)
        if not pipes_open:
            self.loseConnection()
        self._maybe_ended()

    def close_pipes(self) -> None:
        """Whatever held the pipes open lets go of them."""
        self.loseConnection()

    def ignore(self, *signal_numbers: int) -> None:
        """Survive these signals (a ``trap '' TERM``); SIGKILL cannot be ignored."""
        if signals.SIGKILL in signal_numbers:
            raise ValueError("SIGKILL cannot be ignored")
        self.ignored.update(signal_numbers)

    def receive_signal(self, number: int) -> None:
        self.signals.append(int(number))
        if number == 0 or number in self.ignored or self.exited:
            return
        # A real process dies asynchronously: the protocol hears of it later.
        self.reactor.callLater(0, self._killed, number)

    def _killed(self, number: int) -> None:
        if not self.exited:
            self.exit(signal=number)

    def _maybe_ended(self) -> None:
        if self.exited and not self.open_fds and not self.ended:
            self.ended = True
            _fake_pids.pop(self.pid, None)
            self.protocol.processEnded(self.reason)

    def __repr__(self) -> str:
        return f"<FakeProcess {self.pid} {' '.join(self.args)!r}>"


class _SynchronousThreadPool:
    """Runs "thread" work at once; the reactor hands back the result next turn."""

    def callInThreadWithCallback(self, on_result: Callable[[bool, Any], None],
                                 function: Callable[..., Any], *args: Any, **kw: Any) -> None:
        try:
            result = function(*args, **kw)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)

    def callInThread(self, function: Callable[..., Any], *args: Any, **kw: Any) -> None:
        function(*args, **kw)


class FakeProcessReactor(FakeReactor):
    """A clock, memory TCP, multicast and fake processes (see the module docstring).

    ``programs`` scripts processes by program name: ``programs["tc"] =
    lambda p: p.exit(0)`` runs for every spawn of ``tc`` one reactor turn
    after it was spawned (never inside ``spawnProcess``, which a real
    process cannot end inside either).
    """

    def __init__(self) -> None:
        super().__init__()
        #: Every spawn, in order.
        self.spawned: list[FakeProcess] = []
        self.programs: dict[str, Callable[[FakeProcess], Any]] = {}
        self._pool = _SynchronousThreadPool()
        _route_group_signals()

    def spawnProcess(self, processProtocol: Any, executable: str, args: Any = (),
                     env: dict[str, str] | None = None, path: str | None = None,
                     uid: int | None = None, gid: int | None = None, usePTY: bool = False,
                     childFDs: dict[int, Any] | None = None) -> FakeProcess:
        process = FakeProcess(self, processProtocol, executable, list(args), env, path)
        self.spawned.append(process)
        _fake_pids[process.pid] = process
        processProtocol.makeConnection(process)
        for name, script in self.programs.items():
            if process.runs(name):
                self.callLater(0, script, process)
                break
        return process

    def alive(self, program: str | None = None) -> list[FakeProcess]:
        """Processes not yet reaped (running ``program``, if given)."""
        return [p for p in self.spawned
                if not p.exited and (program is None or p.runs(program))]

    def find(self, program: str) -> list[FakeProcess]:
        """Every spawn (running or not) of ``program``."""
        return [p for p in self.spawned if p.runs(program)]

    def getThreadPool(self) -> _SynchronousThreadPool:
        return self._pool

    def callInThread(self, function: Callable[..., Any], *args: Any, **kw: Any) -> None:
        function(*args, **kw)

    def callFromThread(self, function: Callable[..., Any], *args: Any, **kw: Any) -> None:
        self.callLater(0, function, *args, **kw)


def _route_group_signals() -> None:
    """Send group signals for fake PIDs to the fake processes (once per interpreter)."""
    from backend.runtime import processes

    real = processes._kill_group
    if getattr(real, "routes_fake_pids", False):
        return

    def kill_group(pid: int, number: int) -> None:
        process = _fake_pids.get(pid)
        if process is not None:
            process.receive_signal(number)
        elif pid < FAKE_PID_BASE:
            real(pid, number)
        # else: a fake process that has ended -- nothing is there to signal

    kill_group.routes_fake_pids = True  # type: ignore[attr-defined]
    processes._kill_group = kill_group
