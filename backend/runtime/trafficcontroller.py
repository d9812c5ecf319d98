"""The traffic-controller process: a traffic generator's client loop.

Started by ``Agent.launchTrafficController`` as ``python -m
backend.runtime.trafficcontroller SPEC.json`` in a session of its own.  It loads the
agent's class again, gives it the same variables, and loops::

    clientInit()
    while within the limits:
        wait = clientOneLoop(spool, dpool, think, sizes)   # -> clientExec(...)
        sleep(wait)

The limits: at most ``max_clients`` clients running at once (the loop waits
for one to end), ``duration`` seconds, ``count`` launches.  Every client is
a real process in its own process group (``Agent.spawn``).  When the loop
ends -- by a limit, or by SIGTERM from TGStop -- running clients get SIGTERM
(SIGKILL after a grace period) and the process exits once all are reaped.

It talks to its agent in the daemon with JSON lines on standard output:
``{"stream": "clients", "data": {...}}`` once a second and ``{"event":
"clients_done", "data": {...}}`` at the end, with the counters ``launched``,
``running``, ``exited_ok``, ``exited_error``, ``killed``, ``elapsed`` and
``launch_rate`` (launches per second).
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from twisted.internet.defer import maybeDeferred, succeed
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from backend.runtime.addresspool import AddressPool
from backend.agent import Agent, AgentContext
from backend.runtime.agentloader import AgentRegistry
from backend.runtime.processes import ManagedProcess, ProcessManager

#: Seconds running clients get to finish after the loop ends.
CLIENT_GRACE = 1.5
STATS_INTERVAL = 1.0


class TrafficController:
    def __init__(self, reactor: Any, spec: dict[str, Any], emit: Callable[[dict], None]) -> None:
        self.reactor = reactor
        self.spec = spec
        self.emit = emit
        self.exit_code = 0
        cls = AgentRegistry().load_source(spec["source"], spec["agent_type"])
        self.agent: Agent = cls()
        self.processes = ProcessManager(reactor, Path(spec["workdir"]) / "clients.log",
                                        spec["tag"], on_exit=self._client_ended)
        context = AgentContext(
            node=spec["node"], agent_type=spec["agent_type"], group=spec["group"],
            reactor=reactor, workdir=spec["workdir"], process_tag=spec["tag"],
            processes=self.processes, counters_interval=None,
            node_table=lambda: succeed(spec.get("table") or {}),
            report=lambda event, data: emit({"event": event, "data": data}),
            stream=lambda name, data: emit({"stream": name, "data": data}),
        )
        self.agent.attach(context)
        self.agent.processArgs(spec["vars"])
        self.agent.rng = random.Random(spec["seed"])
        self.spool = AddressPool.from_json(spec["sources"], self.agent.rng)
        self.dpool = AddressPool.from_json(spec["destinations"], self.agent.rng)
        self.think = self.agent.getNodeVar("think")
        self.sizes = self.agent.getNodeVar("sizes")
        self.max_clients = max(1, self.agent.getNodeVar("max_clients"))
        self.duration = self.agent.getNodeVar("duration")
        self.count = self.agent.getNodeVar("count")
        self.started_at = 0.0
        self.stopping = False
        self._next: Any = None
        self._waiting_for_slot = False
        self._stats = LoopingCall(self._emit_stats)
        self._stats.clock = reactor

    def start(self) -> None:
        self.started_at = self.reactor.seconds()
        self._stats.start(STATS_INTERVAL, now=False)
        if self.duration:
            self.reactor.callLater(self.duration, self.finish, "duration reached")
        warmup = self.agent.getNodeVar("warmup")
        d = maybeDeferred(self.agent.clientInit)
        d.addCallback(lambda _: deferLater(self.reactor, warmup, lambda: None) if warmup else None)
        d.addCallbacks(lambda _: self._turn(), self._failed)

    def counters(self) -> dict[str, Any]:
        elapsed = max(1e-9, self.reactor.seconds() - self.started_at)
        c = self.processes.counters
        stats = {"launched": c["launched"], "running": len(self.processes.running),
                 "exited_ok": c["exited_ok"], "exited_error": c["exited_error"],
                 "killed": c["killed"], "elapsed": round(elapsed, 3),
                 "launch_rate": round(c["launched"] / elapsed, 2), "pid": os.getpid()}
        # What the agent's clientExec counted (requests, bytes...), too.
        stats.update({k: v for k, v in self.agent.counters.items() if k not in stats})
        return stats

    def _emit_stats(self) -> None:
        self.emit({"stream": "clients", "data": self.counters()})

    def _turn(self) -> None:
        self._next = None
        if self.stopping:
            return
        if self.count and self.processes.counters["launched"] >= self.count:
            self.finish("count reached")
            return
        if len(self.processes.running) >= self.max_clients:
            self._waiting_for_slot = True
            return
        try:
            wait = self.agent.clientOneLoop(self.spool, self.dpool, self.think, self.sizes)
        except Exception:
            self._failed(Failure())
            return
        self._next = self.reactor.callLater(max(0.0, float(wait or 0.0)), self._turn)

    def _client_ended(self, process: ManagedProcess) -> None:
        if self._waiting_for_slot and not self.stopping:
            self._waiting_for_slot = False
            self._turn()
        elif self.stopping and not self.processes.running:
            self._exit()

    def _failed(self, failure: Failure) -> None:
        self.emit({"event": "clients_failed",
                   "data": {"error": f"{failure.type.__name__}: {failure.getErrorMessage()}"}})
        self.exit_code = 1
        self.finish("error")

    def finish(self, why: str) -> None:
        """Stop launching; give running clients a grace period; then exit."""
        if self.stopping:
            return
        self.stopping = True
        if self._next is not None and self._next.active():
            self._next.cancel()
        self.emit({"event": "clients_stopping", "data": {"why": why}})
        if not self.processes.running:
            self._exit()
            return
        if why != "count reached":  # then clients finish in their own time
            self.processes.terminate_all(CLIENT_GRACE)

    def _exit(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    def shutdown(self) -> Any:
        """Before the reactor stops (a limit, or SIGTERM): end every client."""
        self.stopping = True
        if self._next is not None and self._next.active():
            self._next.cancel()
        if self._stats.running:
            self._stats.stop()

        def done(_: Any) -> None:
            self.emit({"event": "clients_done", "data": self.counters()})
            self.processes.close()

        return self.processes.terminate_all(CLIENT_GRACE).addCallback(done)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m backend.runtime.trafficcontroller SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    from twisted.internet import reactor

    out: TextIO = sys.stdout

    def emit(item: dict) -> None:
        out.write(json.dumps(item, default=str) + "\n")
        out.flush()

    controller = TrafficController(reactor, spec, emit)
    # SIGTERM (TGStop) stops the reactor; before it does, every client ends.
    reactor.addSystemEventTrigger("before", "shutdown", controller.shutdown)
    reactor.callWhenRunning(controller.start)
    reactor.run()
    return controller.exit_code


if __name__ == "__main__":
    sys.exit(main())
