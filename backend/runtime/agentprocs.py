"""Agents' processes: starting real processes, stopping them, and noticing
when the ones that make up a run have ended by themselves.

A mixin of :class:`backend.agent.Agent` (SEER's documented helpers keep
their camelCase names: ``stopProcesses``, ``runProcess``, ``waitForPort``).
Processes spawned with ``ends_run=True`` are the run itself -- a flood, a
capture, a client loop: when the last of them has ended on its own (not
by STOP or shutdown) and no other process of the agent is left (a server
still serving), the agent calls ``runFinished``, so the controller records
that the run is over and no snapshot ever resumes it.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool

from backend.runtime.processes import ManagedProcess, sweep, wait_for_port
from backend.runtime.safety import resolve_targets


class ProcessFailed(OSError):
    """A tool an agent ran exited with an error."""


class AgentProcesses:
    """The process half of an Agent (it needs ``context`` and ``reactor``)."""

    context: Any
    reactor: Any
    #: Processes of the current run not yet ended (spawned with ends_run).
    _run_processes: set[ManagedProcess]
    #: True while STOP or shutdown is ending the processes: not "by itself".
    _stopping: bool

    def runFinished(self, why: str = "") -> None:
        """Say that this group's run on this node is over by itself: its
        generator finished, its count or duration is reached.  The controller
        records it, so a daemon that restarts later does not run it again.
        Not for STOP (the controller knows of that already)."""
        if self.context:
            self.context.run_finished(why or "its run ended")

    def spawn(self, argv: list[str], name: str | None = None, env: dict[str, str] | None = None,
              path: str | None = None, on_line: Callable[[int, bytes], bool] | None = None,
              ends_run: bool = False) -> ManagedProcess:
        """Start a real process in its own process group; its output goes to
        the agent's log (``on_line`` sees each line first), its exit code is
        counted (see backend.runtime.processes).  ``ends_run``: this process
        is (part of) the run, which is over when it and the others like it
        have ended by themselves."""
        process = self.context.process_manager().spawn(argv, name=name, env=env, path=path,
                                                       on_line=on_line)
        if ends_run:
            self._run_processes.add(process)
            process.ended.addCallback(self._run_process_ended)
        return process

    def _run_process_ended(self, process: ManagedProcess) -> ManagedProcess:
        self._run_processes.discard(process)
        if not (self._run_processes or self._stopping or self.pids):
            self.runFinished(f"{process.name}: {process.describe_exit()}")
        return process

    @property
    def pids(self) -> list[int]:
        """PIDs of the processes this agent started that are still running."""
        manager = self.context.processes if self.context else None
        return sorted(manager.running) if manager else []

    def stopProcesses(self) -> Deferred:
        """Stop every process this agent started, and anything they left behind.

        SIGTERM to each process group, SIGKILL after a grace period, then a
        sweep for stray processes carrying this agent's tag; fires when done.
        """
        manager = self.context.processes if self.context else None
        if manager is None:
            return succeed(None)
        reactor = self.reactor
        self._stopping = True

        def sweep_strays(_: Any) -> Deferred:
            return deferToThreadPool(reactor, reactor.getThreadPool(), sweep, manager.tag)

        def stopped(result: Any) -> Any:
            self._stopping = False
            self._run_processes.clear()
            return result

        return manager.terminate_all().addCallback(sweep_strays).addBoth(stopped)

    def runProcess(self, argv: list[str], timeout: float = 30.0) -> Deferred:
        """Run a tool (tc, ip, ...) to completion without blocking; fires with
        its standard output, or fails with ProcessFailed saying what it printed."""
        output: list[str] = []
        errors: list[str] = []

        def collect(fd: int, line: bytes) -> bool:
            (output if fd == 1 else errors).append(line.decode(errors="replace"))
            return False  # and into the agent log

        process = self.spawn(argv, name=os.path.basename(argv[0]), on_line=collect)
        timer = self.reactor.callLater(timeout, process.signal_group, 9)

        def ended(p: ManagedProcess) -> str:
            if timer.active():
                timer.cancel()
            if p.exit_code != 0:
                message = " ".join(errors or output).strip() or p.describe_exit()
                raise ProcessFailed(f"`{' '.join(argv)}` failed: {message}")
            return "\n".join(output)

        return process.ended.addCallback(ended)

    def resolveTargets(self, specs: list[str], allow: list[str] | None = None) -> Deferred:
        """Node names and addresses to PoolAddress targets inside the experiment.

        Fails with TargetRefused for an address outside the experiment's own
        addresses and subnets, unless ``allow`` (CIDRs) covers it.
        """
        return self.context.node_table().addCallback(
            lambda table: resolve_targets(specs, table, allow or []))

    def waitForPort(self, host: str, port: int, timeout: float = 10.0) -> Deferred:
        """Fires once ``host:port`` accepts TCP connections (a server is up);
        fails with TimeoutError after ``timeout`` seconds."""
        return wait_for_port(self.reactor, host, port, timeout)
