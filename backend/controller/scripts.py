"""EXECUTE: experiment scripts run on the controller as processes of their own.

SEER's ``handleEXECUTE``: "save the file to disk and then run it as its own
python process".  Each run gets a folder (``state_dir/runs/<id>/``) with
the script, its output and a ``results/`` folder; the script runs there in
a session of its own, and talks back to the controller through the
controller's Unix socket, authenticated by a one-time token in its
environment (``SEER_CONTROLLER=unix:PATH``, ``SEER_TOKEN``) -- it acts with
the identity of the experimenter who ran it, and no key leaves anyone.

Its standard output and error go to the client live (OUTPUT frames); when
it ends, the files it left in ``results/`` follow (FILE frames) and then
EXIT with its exit code.  Cancelling (CANCEL, or the client going away)
sends SIGINT to its process group -- a script's ``Experiment`` stops the
agent groups it started -- then SIGTERM and SIGKILL if it lingers.  Any
group it STARTed and did not STOP is stopped by the controller when the
script is gone, however it ended.
"""

from __future__ import annotations

import codecs
import itertools
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.runtime.files import CHUNK, MAX_GET, check_name, write_atomically
from backend.runtime.processes import in_own_session

log = Logger()

#: Seconds between SIGINT, SIGTERM and SIGKILL when a run is cancelled.
CANCEL_STEPS = (5.0, 5.0)
MAX_SCRIPT = 15 * 1024 * 1024


@dataclass
class Run:
    id: str
    experimenter: str
    token: str
    folder: Path
    client: Any
    request_id: Any
    started_at: float
    process: Any = None
    #: (agent, group) -> wire target of each START not yet STOPped.
    started: dict[tuple[str, str], Any] = field(default_factory=dict)
    cancelled: bool = False
    timers: list[Any] = field(default_factory=list)
    #: How it ended (set before the listeners hear of its end).
    code: int | None = None
    signal: int | None = None


class ScriptProcess(ProcessProtocol):
    def __init__(self, runner: ScriptRunner, run: Run) -> None:
        self.runner = runner
        self.run = run
        self.decoders = {1: codecs.getincrementaldecoder("utf-8")("replace"),
                         2: codecs.getincrementaldecoder("utf-8")("replace")}
        self.log_file = open(run.folder / "output.log", "ab", buffering=0)

    def childDataReceived(self, fd: int, data: bytes) -> None:
        self.log_file.write(data)
        text = self.decoders.get(fd, self.decoders[1]).decode(data)
        if text:
            stream = "stdout" if fd == 1 else "stderr"
            self.runner.to_client(self.run, {"type": "OUTPUT", "stream": stream, "data": text})
            for listener in self.runner.listeners:  # the dashboard's event log streams it
                hook = getattr(listener, "run_output", None)
                if hook is not None:
                    hook(self.run, stream, text)

    def processEnded(self, reason: Failure) -> None:
        self.log_file.close()
        code, sig = 0, None
        if reason.check(ProcessTerminated):
            code, sig = reason.value.exitCode, reason.value.signal
        elif not reason.check(ProcessDone):
            code = 1
        self.runner.ended(self.run, code, sig)


class ScriptRunner:
    def __init__(
        self,
        reactor: Any,
        folder: Path,
        socket_path: Path,
        send_stop: Callable[[str, str, Any, str], None],
        blocking: Callable[..., Deferred],
    ) -> None:
        self.reactor = reactor
        self.folder = folder
        self.socket_path = socket_path
        self.send_stop = send_stop
        self.blocking = blocking
        self.runs: dict[str, Run] = {}
        self._by_token: dict[str, Run] = {}
        self._numbers = itertools.count(1)
        #: Told of each run's start and end (run_started, run_ended): the run
        #: records; and, if they have run_output(run, stream, text), what it prints
        #: (the dashboard).
        self.listeners: list[Any] = []

    # -- starting -------------------------------------------------------------------

    def execute(self, client: Any, request_id: Any, experimenter: str, name: str,
                script: bytes, args: list[str]) -> Deferred:
        """Save and start a script; fires with its Run once it runs."""
        check_name(name)
        if len(script) > MAX_SCRIPT:
            raise ValueError(f"a script may have at most {MAX_SCRIPT} bytes")
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._numbers)}"
        run = Run(run_id, experimenter, secrets.token_hex(32), self.folder / run_id, client,
                  request_id, self.reactor.seconds())
        path = run.folder / name

        def save() -> None:
            (run.folder / "results").mkdir(parents=True, exist_ok=True)
            write_atomically(path, script, 0o644)

        return self.blocking(save).addCallback(lambda _: self._spawn(run, path, args))

    def _spawn(self, run: Run, path: Path, args: list[str]) -> Run:
        env = dict(os.environ, SEER_CONTROLLER=f"unix:{self.socket_path}", SEER_TOKEN=run.token,
                   SEER_RUN=run.id, SEER_EXPERIMENT_START=repr(run.started_at),
                   SEER_IDENTITY=run.experimenter, PYTHONUNBUFFERED="1")
        env.pop("SEER_CERTS", None)
        # seer.client.runscript runs it as `python SCRIPT` would, with one line
        # for a cancel instead of a KeyboardInterrupt traceback.
        argv = in_own_session([sys.executable, "-u", "-m", "seer.client.runscript", str(path),
                               *args])
        run.process = self.reactor.spawnProcess(ScriptProcess(self, run), argv[0], argv, env=env,
                                                path=str(run.folder))
        self.runs[run.id] = run
        self._by_token[run.token] = run
        for listener in self.listeners:
            listener.run_started(run)
        log.info("run {run}: {experimenter} started {script} (pid {pid})", run=run.id,
                 experimenter=run.experimenter, script=path.name, pid=run.process.pid)
        return run

    def by_token(self, token: Any) -> Run | None:
        if not isinstance(token, str):
            return None
        run = self._by_token.get(token)
        return run if run is not None and secrets.compare_digest(run.token, token) else None

    def to_client(self, run: Run, header: dict[str, Any], blob: bytes = b"") -> None:
        if run.client is not None:
            run.client.send(dict(header, id=run.request_id), blob)

    # -- what a script starts -------------------------------------------------------------

    def note(self, run_id: str, message: dict[str, Any]) -> None:
        """Remember START and forget STOP of a script's agent groups."""
        run = self.runs.get(run_id)
        if run is None or message.get("type") != "COMMAND":
            return
        key = (message["agent"], message["group"])
        if message.get("command") == "START":
            run.started[key] = message.get("target")
        elif message.get("command") == "STOP":
            run.started.pop(key, None)

    # -- ending ----------------------------------------------------------------------------

    def cancel(self, run: Run) -> None:
        """SIGINT now, SIGTERM and SIGKILL later if the script lingers."""
        if run.cancelled or run.process is None or run.process.pid is None:
            return
        run.cancelled = True
        self._signal(run, signal.SIGINT)
        first, second = CANCEL_STEPS
        run.timers.append(self.reactor.callLater(first, self._signal, run, signal.SIGTERM))
        run.timers.append(self.reactor.callLater(first + second, self._signal, run, signal.SIGKILL))

    def cancel_for(self, client: Any) -> None:
        for run in list(self.runs.values()):
            if run.client is client:
                run.client = None
                self.cancel(run)

    def _signal(self, run: Run, signum: int) -> None:
        pid = run.process.pid if run.process is not None else None
        if pid is None:
            return
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def ended(self, run: Run, code: int, sig: int | None) -> None:
        for timer in run.timers:
            if timer.active():
                timer.cancel()
        self._by_token.pop(run.token, None)
        for (agent, group), target in sorted(run.started.items()):
            log.info("run {run} left {agent} {group} started: stopping it",
                     run=run.id, agent=agent, group=group)
            self.send_stop(agent, group, target, run.experimenter)
        run.started.clear()
        run.code, run.signal = code, sig
        log.info("run {run} ended: {how}", run=run.id,
                 how=f"signal {sig}" if sig else f"exit code {code}")
        for listener in self.listeners:  # its record is closed before results/ are read
            listener.run_ended(run)

        def unreadable(failure: Failure) -> list:
            log.failure("reading run {run}'s results", failure, run=run.id)
            return []

        self.blocking(_result_files, run.folder).addErrback(unreadable).addCallback(
            lambda files: self._finish(run, code, sig, files))

    def _finish(self, run: Run, code: int, sig: int | None, files: list[tuple[str, bytes]]) -> None:
        for name, data in files:
            for offset in range(0, max(1, len(data)), CHUNK):
                chunk = data[offset: offset + CHUNK]
                self.to_client(run, {"type": "FILE", "name": name, "offset": offset,
                                     "size": len(data), "last": offset + CHUNK >= len(data)},
                               chunk)
        self.to_client(run, {"type": "EXIT", "code": code, "signal": sig, "run": run.id,
                             "folder": str(run.folder)})
        self.runs.pop(run.id, None)

    def stop_all(self) -> Deferred:
        for run in list(self.runs.values()):
            run.client = None
            self.cancel(run)
        return succeed(None)


def _result_files(folder: Path) -> list[tuple[str, bytes]]:
    """Everything a run left in results/, up to MAX_GET bytes in all."""
    results = folder / "results"
    files, total = [], 0
    if not results.is_dir():
        return files
    for path in sorted(p for p in results.rglob("*") if p.is_file()):
        size = path.stat().st_size
        if total + size > MAX_GET:
            break
        files.append((str(path.relative_to(folder)), path.read_bytes()))
        total += size
    return files
