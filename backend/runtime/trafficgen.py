"""SEER's traffic-generator life cycle, as a mixin of :class:`backend.agent.Agent`.

``TGStart`` runs ``serverExec`` on the nodes in ``servers`` and
``launchTrafficController`` on the nodes in ``clients``; the traffic
controller is a process of its own (backend.runtime.trafficcontroller)
that calls ``clientInit`` once and then ``clientOneLoop(spool, dpool,
think, sizes)`` over and over -- pick a source and a destination from the
address pools, ``clientExec(src, dst, size)``, wait the think time --
within the limits ``max_clients``, ``duration`` and ``count``.  ``TGStop``
runs ``serverStop`` and stops every process the agent started.  The names
are SEER's.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed

from backend.runtime.addresspool import AddressPool, PoolAddress
from seer.protocol.distributions import Distribution
from seer.protocol.vartypes import Var

#: The variables of every traffic generator (TrafficAgent declares them).
TRAFFIC_VARIABLES = [
    Var("servers", "nodelist", [], "nodes that run the server side"),
    Var("clients", "nodelist", [], "nodes that run the client loop"),
    Var("think", "distribution", "expo(1)", "seconds between client launches on a node"),
    Var("sizes", "distribution", "constant(1000)", "size of each client's transfer, bytes"),
    Var("max_clients", "int", 10, "most clients running at once on a node", 1, 100_000),
    Var("duration", "float", 0, "seconds the client loop runs (0: until STOP)", 0),
    Var("count", "int", 0, "clients each node launches in all (0: no limit)", 0),
    Var("sources", "cidrlist", [],
        "source addresses for clients (default: the client node's own experiment addresses)"),
    Var("seed", "int", 0, "random seed for repeatable runs (0: a fresh one, reported)"),
    Var("warmup", "float", 1.0,
        "seconds the client loop waits before its first client, so servers started by the "
        "same START are up", 0, 3600),
]


def _tc_pid(item: dict[str, Any]) -> int:
    data = item.get("data") or {}
    return int(data.get("pid", 0)) if isinstance(data, dict) else 0


def sum_stats(stats: Any) -> dict[str, Any]:
    """Several traffic controllers' counters added up (rates too)."""
    total: dict[str, Any] = {}
    for item in stats:
        for key, value in item.items():
            if key == "pid" or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            total[key] = total.get(key, 0) + value
    return total


class TrafficGenerator:
    """The traffic-generator half of an Agent."""

    context: Any
    rng: random.Random
    counters: Any
    client_stats: dict[int, dict[str, Any]]


    def _role(self, key: str) -> bool:
        return self.nodename in (self.getNodeVar(key) or [])

    def TGStart(self) -> Deferred:
        """serverExec on the nodes in ``servers``, launchTrafficController on
        the nodes in ``clients``; the outcome says which ran here."""
        # STATS counts from the latest START.
        self.counters.clear()
        self.client_stats.clear()
        started: dict[str, Any] = {"server": self._role("servers"), "clients": self._role("clients")}
        d = maybeDeferred(self.serverExec) if started["server"] else succeed(None)
        if started["clients"]:
            d.addCallback(lambda _: self.launchTrafficController())
            d.addCallback(lambda pid: started.update(traffic_controller=pid))
        return d.addCallback(lambda _: started)

    def TGStop(self) -> Deferred:
        """serverStop, then stop every process the agent started."""
        d = maybeDeferred(self.serverStop) if self._role("servers") else succeed(None)
        return d.addBoth(lambda _: self.stopProcesses()).addCallback(lambda _: None)

    def serverExec(self) -> Any:
        """Start the server side (blank: override)."""

    def serverStop(self) -> Any:
        """Stop the server side (blank: TGStop stops the processes anyway)."""

    def clientInit(self) -> Any:
        """Called once in the traffic controller before the loop (blank)."""

    def clientExec(self, src: PoolAddress, dst: PoolAddress, size: int) -> Any:
        """Launch one client from ``src`` to ``dst`` moving ``size`` bytes (blank)."""

    def clientOneLoop(self, spool: AddressPool, dpool: AddressPool, think: Distribution,
                      sizes: Distribution) -> float:
        """One turn of the client loop: random source and destination,
        ``clientExec``, then the think time to wait (returned, in seconds)."""
        src = spool.Random()
        dst = dpool.Random()
        self.clientExec(src, dst, max(0, int(sizes.sample(self.rng))))
        return max(0.0, think.sample(self.rng))

    def launchTrafficController(self) -> Deferred:
        """Start the traffic-controller process for this node's clients.

        It runs in its own session and process group, loads this agent's
        class again, and loops ``clientOneLoop``; fires with its PID.
        """
        return self.context.node_table().addCallback(self._launch_with_table)

    def _launch_with_table(self, table: dict[str, Any]) -> int:
        servers = self.getNodeVar("servers") or []
        destinations = {s: [f"{a}/32" if ":" not in a else f"{a}/128"
                            for a in (table.get(s) or {}).get("addresses", [])]
                        for s in servers}
        destinations = {s: a for s, a in destinations.items() if a}
        if not destinations:
            raise ValueError(
                f"no destination: the servers ({', '.join(servers) or 'none set'}) have no "
                "experiment addresses; set `servers` to nodes with addresses"
            )
        own = self.getNodeVar("sources") or [
            f"{a}/32" if ":" not in a else f"{a}/128"
            for a in (table.get(self.nodename) or {}).get("addresses", [])
        ]
        if not own:
            raise ValueError(f"no source address: {self.nodename} has no experiment "
                             "addresses and `sources` is not set")
        seed = self.getNodeVar("seed") or random.SystemRandom().randrange(1, 2**31)
        workdir = Path(self.context.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        spec = {
            "agent_type": self.AGENT_TYPE,
            "source": getattr(type(self), "__seer_source__", None),
            "node": self.nodename,
            "group": self.group,
            "vars": self.raw_vars,
            "sources": {self.nodename: own},
            "destinations": destinations,
            "seed": seed,
            "workdir": str(workdir),
            "tag": self.context.process_manager().tag + "/clients",
            "table": table,
        }
        if spec["source"] is None:
            raise ValueError(f"{self.AGENT_TYPE} was not loaded from a module file or an "
                             "entry point; the traffic controller cannot load it again")
        path = workdir / "traffic-controller.json"
        path.write_text(json.dumps(spec))
        # The client loop is the run: when it ends by itself (duration or
        # count reached) and no server is left here, the run is over.
        process = self.spawn([sys.executable, "-m", "backend.runtime.trafficcontroller",
                              str(path)], name="traffic-controller",
                             on_line=self._traffic_controller_line, ends_run=True)
        self.report("traffic_controller", pid=process.pid, seed=seed)
        return process.pid

    def _traffic_controller_line(self, fd: int, line: bytes) -> bool:
        """The traffic controller's JSON lines become this agent's reports."""
        if fd != 1 or not line.startswith(b"{"):
            return False
        try:
            item = json.loads(line)
        except ValueError:
            return False
        if "event" in item:
            self.report(str(item["event"]), **(item.get("data") or {}))
            if item["event"] == "clients_done" and isinstance(item.get("data"), dict):
                self.client_stats[_tc_pid(item)] = item["data"]
        elif "stream" in item:
            self.stream(str(item["stream"]), item.get("data"))
            if item["stream"] == "clients" and isinstance(item.get("data"), dict):
                self.client_stats[_tc_pid(item)] = item["data"]
        else:
            return False
        return True
