"""One agent worker process, as the daemon sees it: a ProcessProtocol.

Frames from the worker's stdout go to its :class:`~backend.node.workers.AgentWorker`
(bytes that are not frames get the worker killed); lines from its stderr
go to the daemon's log, each after the worker's NODE/TYPE/GROUP, and the
last few are kept as its last words.  The supervision -- what a death
means, restarts -- is :mod:`backend.node.workers`.
"""

from __future__ import annotations

import signal
from collections import deque
from typing import Any

from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from seer.protocol.wire import FrameDecoder, WireError, encode_frame

log = Logger()

#: Longest line of a worker's stderr logged as it is.
STDERR_LINE = 4096


def describe_exit(reason: Failure) -> str:
    """``exit code N`` or ``signal S, NAME``, from a process's end."""
    number = getattr(reason.value, "signal", None)
    if number:
        try:
            return f"signal {number}, {signal.Signals(number).name}"
        except ValueError:
            return f"signal {number}"
    code = getattr(reason.value, "exitCode", None)
    return f"exit code {'?' if code is None else code}"


class WorkerProcess(ProcessProtocol):
    """One worker process: frames from its stdout, log lines from its stderr."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.decoder = FrameDecoder()
        self.kill_reason: str | None = None
        #: Its last lines on stderr (a crash's last words), for the worker_died event.
        self.tail: deque[str] = deque(maxlen=5)
        self._partial = b""
        self._ended = False

    def send(self, header: dict[str, Any]) -> None:
        if self.transport is not None and not self._ended:
            self.transport.write(encode_frame(header))

    def outReceived(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except WireError as e:
            self.kill(f"it broke the worker protocol ({e})")
            return
        for frame in frames:
            self.worker.frame_received(self, frame)

    def errReceived(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-STDERR_LINE:]
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        text = line.decode(errors="replace").rstrip()[:STDERR_LINE]
        if text:
            self.tail.append(text)
            log.info("{label}: {line}", label=self.worker.label, line=text)

    def processEnded(self, reason: Failure) -> None:
        self._ended = True
        if self._partial:
            self._line(self._partial)
            self._partial = b""
        self.worker.ended(self, reason)

    def kill(self, why: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = f"killed: {why}"
            log.warn("{label}: killing the agent worker: {why}", label=self.worker.label,
                     why=why)
        try:
            self.transport.signalProcess("KILL")
        except (ProcessExitedAlready, OSError):
            pass
