"""Agent workers played in the test's own process, on a FakeProcessReactor.

A daemon (or a Dispatcher with a :class:`~backend.node.workers.WorkerSupervisor`)
on a :class:`~seer.testing.processes.FakeProcessReactor` starts its agent
workers with ``spawnProcess``: nothing runs.  :class:`FakeWorkers` answers
every such spawn with the worker's real code -- a
:class:`~backend.runtime.worker.WorkerHost` -- wired to the fake process's
pipes and on the same clock, so a test sees the worker protocol exactly as
a real worker speaks it, and can still kill the "worker" as it likes::

    workers = FakeWorkers(reactor)
    ...                                    # a message for an isolated group
    (worker,) = workers.alive()
    worker.process.exit(signal=11)         # it segfaults

What it leaves out: the separate process itself (a handler that blocks
blocks the test; the agent's timers live on after its worker "died", but
what they send is dropped), and the orphan watchdog.
"""

from __future__ import annotations

from typing import Any, Callable

from backend.runtime.worker import WorkerHost, load_agent_class
from backend.runtime.workerproto import WORKER_MODULE
from seer.protocol.wire import FrameDecoder, encode_frame
from seer.testing.processes import FakeProcess, FakeProcessReactor


class FakeWorker:
    """One spawned worker: a real WorkerHost on a fake process's pipes."""

    def __init__(self, process: FakeProcess,
                 load: Callable[[dict[str, str], str], type]) -> None:
        self.process = process
        self.host = WorkerHost(process.reactor, self._send, self._finish, load,
                               alive=lambda: self.alive)
        #: Every frame the host sent to the daemon, in order.
        self.sent: list[dict[str, Any]] = []
        #: Every frame the daemon sent to the host, in order.
        self.received: list[dict[str, Any]] = []
        self._decoder = FrameDecoder()
        written, process.stdin = list(process.stdin), []
        process.on_stdin = self._stdin
        for chunk in written:  # SETUP was written inside spawnProcess
            self._stdin(chunk)

    @property
    def alive(self) -> bool:
        return not self.process.exited

    def _stdin(self, data: bytes) -> None:
        if not self.alive:
            return
        for frame in self._decoder.feed(data):
            self.received.append(frame.header)
            self.host.frame_received(frame)

    def _send(self, header: dict[str, Any]) -> None:
        if self.alive and 1 in self.process.open_fds:
            data = encode_frame(header)  # ValueError for a frame too large, as in a real one
            self.sent.append(header)
            self.process.output(data)

    def _finish(self, code: int) -> None:
        if self.alive:  # a real process ends after its last write, not inside it
            self.process.reactor.callLater(0, lambda: self.alive and self.process.exit(code))


class FakeWorkers:
    """Plays every agent worker spawned on ``reactor`` (see the module docstring).

    ``load`` finds agent classes (default: from their module file or entry
    point, as a real worker does).
    """

    def __init__(self, reactor: FakeProcessReactor,
                 load: Callable[[dict[str, str], str], type] = load_agent_class) -> None:
        self.reactor = reactor
        self.load = load
        #: Every worker started, in order.
        self.started: list[FakeWorker] = []
        reactor.programs[WORKER_MODULE] = self._spawned

    def _spawned(self, process: FakeProcess) -> None:
        self.started.append(FakeWorker(process, self.load))

    def alive(self) -> list[FakeWorker]:
        return [w for w in self.started if w.alive]
