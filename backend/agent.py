"""backend.agent -- the base class every SEER agent derives from.

An agent is a Python class with a type name, typed variables and one
``handleX`` method per command X::

    from backend.agent import Agent, Var

    class Hello(Agent):
        AGENT_TYPE = "HELLO"
        NICE_NAME = "Says hello"
        VARIABLES = [Var("greeting", "string", "hello", "what to say")]

        def handleSAY(self):
            self.report("said", text=self.getNodeVar("greeting"))

The daemon creates one instance per (agent type, group) on demand, gives it
its context (node name, group, reactor, reporting, processes), and calls
``processArgs`` for SET and ``handleX`` for COMMAND X.  A handler may return
None, a JSON-able dict (returned to the client as the outcome's result), or a
Deferred of either; an exception fails that node's outcome with its message
and leaves everything else running.

Variables are per node with ``'*'`` as the fallback, as in SEER:
``getNodeVar(key, node)`` and ``getNodeTable(key)``.  The ``NODES`` variable,
when set, limits which nodes of the group take part in commands.

Traffic generators use SEER's life cycle (:class:`TrafficAgent` wires it to
START and STOP): ``TGStart`` runs ``serverExec`` on the nodes in ``servers``
and ``launchTrafficController`` on the nodes in ``clients``; the traffic
controller is a process of its own that calls ``clientInit`` once and then
``clientOneLoop(spool, dpool, think, sizes)`` over and over -- pick a source
and a destination from the address pools, ``clientExec(src, dst, size)``,
wait the think time -- within the limits ``max_clients``, ``duration`` and
``count``.  ``TGStop`` runs ``serverStop`` and stops every process the agent
started.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from backend.runtime.addresspool import AddressPool, PoolAddress
from backend.runtime.processes import ManagedProcess, ProcessManager, sweep, wait_for_port
from backend.runtime.safety import TargetRefused, resolve_targets
from seer.protocol.distributions import Distribution
from seer.protocol.messages import RUN_COMMANDS  # noqa: F401  (agents have imported it from here)
from seer.protocol.vartypes import Var, VarError, convert_vars

__all__ = ["Agent", "TrafficAgent", "AgentContext", "AddressPool", "PoolAddress", "Var",
           "VarError", "MENUS", "TRAFFIC_VARIABLES", "ProcessFailed", "TargetRefused"]

MENUS = ("Traffic", "Attack", "Measurement", "Control")


NODES_VAR = Var(
    "NODES",
    "nodelist",
    None,
    "nodes of this group that take part in its commands (default: every "
    "node the command targets)",
)

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


class ProcessFailed(OSError):
    """A tool an agent ran exited with an error."""


def _no_table() -> Deferred:
    return succeed({})


def _tc_pid(item: dict[str, Any]) -> int:
    data = item.get("data") or {}
    return int(data.get("pid", 0)) if isinstance(data, dict) else 0


def _sum_stats(stats: Any) -> dict[str, Any]:
    """Several traffic controllers' counters added up (rates too)."""
    total: dict[str, Any] = {}
    for item in stats:
        for key, value in item.items():
            if key == "pid" or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            total[key] = total.get(key, 0) + value
    return total


@dataclass
class AgentContext:
    """What the daemon gives each agent instance."""

    node: str
    agent_type: str
    group: str
    reactor: Any
    report: Callable[[str, dict[str, Any]], None] = lambda event, data: None
    stream: Callable[[str, Any], None] = lambda name, data: None
    node_info: dict[str, Any] = field(default_factory=dict)
    workdir: str = "."
    #: Fires with {node: {"addresses": [...], ...}} for every node of the experiment.
    node_table: Callable[[], Deferred] = _no_table
    #: Tag that marks every process this agent starts (see backend.runtime.processes).
    process_tag: str = ""
    processes: ProcessManager | None = None
    #: Seconds between "counters" streams while they change (None: never;
    #: a traffic controller sends its counters with its "clients" stream).
    counters_interval: float | None = 1.0

    def process_manager(self) -> ProcessManager:
        if self.processes is None:
            self.processes = ProcessManager(
                self.reactor, Path(self.workdir) / "agent.log",
                self.process_tag or f"{self.node}/{self.agent_type}/{self.group}/{os.getpid()}",
            )
        return self.processes


class Agent:
    """Base agent: variable handling, per-node values, reporting."""

    #: The type name experimenters use, e.g. "HTTP".  Required.
    AGENT_TYPE: ClassVar[str] = ""
    #: One line saying what the agent does.
    NICE_NAME: ClassVar[str] = ""
    #: Where a GUI lists it: one of MENUS.
    MENU: ClassVar[str] = "Control"
    #: The agent's variables (NODES is added for every agent).
    VARIABLES: ClassVar[list[Var]] = []

    log = Logger()

    def __init__(self) -> None:
        self.vars: dict[str, dict[str, Any]] = {}
        #: The values as they came in the SETs, per node (what a traffic
        #: controller process is given to convert again).
        self.raw_vars: dict[str, Any] = {}
        self.context: AgentContext | None = None
        #: Random numbers for this agent; seeded by ``seed`` in traffic agents.
        self.rng = random.Random()
        #: What the agent did (requests, bytes, errors...): STATS returns it,
        #: and it is streamed to sinks as "counters" while it changes.
        self.counters: Counter[str] = Counter()
        #: The latest "clients" stream of each traffic controller, by PID.
        self.client_stats: dict[int, dict[str, Any]] = {}
        self._counters_call: Any = None

    # -- set-up by the runtime ------------------------------------------------

    def attach(self, context: AgentContext) -> None:
        """Called once by the daemon before any SET or command."""
        self.context = context
        self.setup()

    def setup(self) -> None:
        """Override for one-time set-up that needs the context."""

    @property
    def nodename(self) -> str:
        return self.context.node if self.context else ""

    @property
    def group(self) -> str:
        return self.context.group if self.context else ""

    @property
    def reactor(self) -> Any:
        return self.context.reactor if self.context else None

    # -- class description ------------------------------------------------------

    @classmethod
    def declared_variables(cls) -> dict[str, Var]:
        """NODES, then every class's VARIABLES from the base down (later wins)."""
        cached = cls.__dict__.get("_declared_cache")
        if cached is not None:
            return cached
        declared = {NODES_VAR.name: NODES_VAR}
        for klass in reversed(cls.__mro__):
            for var in vars(klass).get("VARIABLES", []):
                declared[var.name] = var
        # Looked up on every variable read: computed once per class.
        cls._declared_cache = declared
        return declared

    @classmethod
    def commands(cls) -> list[str]:
        return sorted(
            name[len("handle"):]
            for name in dir(cls)
            if name.startswith("handle") and len(name) > 6 and name[6].isupper()
            and callable(getattr(cls, name))
        )

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalogue entry a daemon reports and `seer agents` prints."""
        # The class's own docstring only: an inherited one describes the base.
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        return {
            "type": cls.AGENT_TYPE,
            "nice": cls.NICE_NAME or doc.split("\n", 1)[0],
            "menu": cls.MENU,
            "commands": cls.commands(),
            "variables": [v.to_json() for v in cls.declared_variables().values()],
        }

    # -- variables (SEER API) ---------------------------------------------------

    def processArgs(self, args: dict[str, Any]) -> None:
        """Insert all of the variables, verifying/converting each.

        All or nothing: if any variable is unknown or any value bad, nothing
        changes and VarError names every problem.
        """
        converted = convert_vars(self.declared_variables(), args, self.AGENT_TYPE)
        self.validate(converted)
        self.vars.update(converted)
        self.raw_vars.update(args)

    def validate(self, new: dict[str, dict[str, Any]]) -> None:
        """Check a SET's converted values on this node before any is applied.

        ``new`` maps each variable in the SET to its node table.  Raise
        VarError (naming the variable) to refuse the whole SET on this node;
        nothing changes.  For checks only the node can make (is that port
        free here?); types and ranges are checked before, also by the
        controller.
        """

    def configDone(self) -> Any:
        """Called after a SET has been applied; override to react."""

    def getNodeVar(self, key: str, node: str | None = None) -> Any:
        """The value of ``key`` for ``node`` (default: this node), or '*'."""
        node = node or self.nodename
        table = self.vars.get(key)
        if table is None:
            return self._default(key)
        if node in table:
            return table[node]
        return table.get("*", self._default(key))

    def getNodeTable(self, key: str) -> dict[str, Any]:
        """Every node's value for ``key``, '*' included."""
        table = self.vars.get(key)
        if table is None:
            return {"*": self._default(key)}
        return dict(table)

    def _default(self, key: str) -> Any:
        var = self.declared_variables().get(key)
        if var is None:
            raise KeyError(f"{self.AGENT_TYPE} has no variable {key!r}")
        return None if var.default is None else var.convert(var.default)

    # -- counters -------------------------------------------------------------------

    def count(self, name: str, n: float = 1) -> None:
        """Add to a counter; sinks get the counters within a second."""
        self.counters[name] += n
        interval = self.context.counters_interval if self.context else None
        if interval is not None and self._counters_call is None:
            self._counters_call = self.reactor.callLater(interval, self._stream_counters)

    def _stream_counters(self) -> None:
        self._counters_call = None
        self.stream("counters", dict(self.counters))

    def handleSTATS(self) -> dict[str, Any]:
        """This node's counters, and its traffic controllers' (any agent answers STATS)."""
        out: dict[str, Any] = {"counters": dict(self.counters)}
        if self.client_stats:
            out["clients"] = _sum_stats(self.client_stats.values())
        return out

    def handleVARS(self) -> dict[str, Any]:
        """Every variable's value on this node (any agent answers VARS)."""
        out = {}
        for name in self.declared_variables():
            value = self.getNodeVar(name)
            out[name] = value if isinstance(value, (str, int, float, bool, list, type(None))) \
                else str(value)
        return out

    def takes_part(self) -> bool:
        """Whether this node is one of the group's NODES (if NODES is set)."""
        nodes = self.getNodeVar("NODES")
        return nodes is None or self.nodename in nodes

    # -- reporting ----------------------------------------------------------------

    def report(self, event: str, **data: Any) -> None:
        """Send an event with JSON-able data to the controller and sinks."""
        if self.context:
            self.context.report(event, data)

    def stream(self, name: str, data: Any) -> None:
        """Send a sample of continuous data (counters, rates) to sinks."""
        if self.context:
            self.context.stream(name, data)

    # -- processes ----------------------------------------------------------------

    def spawn(self, argv: list[str], name: str | None = None, env: dict[str, str] | None = None,
              path: str | None = None,
              on_line: Callable[[int, bytes], bool] | None = None) -> ManagedProcess:
        """Start a real process in its own process group; its output goes to
        the agent's log (``on_line`` sees each line first), its exit code is
        counted (see backend.runtime.processes)."""
        return self.context.process_manager().spawn(argv, name=name, env=env, path=path,
                                                    on_line=on_line)

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

        def sweep_strays(_: Any) -> Deferred:
            return deferToThreadPool(reactor, reactor.getThreadPool(), sweep, manager.tag)

        return manager.terminate_all().addCallback(sweep_strays)

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

    def stop(self) -> Any:
        """Called when the daemon shuts down; override to release what you
        hold (processes the agent started are stopped anyway)."""

    def shutdown(self) -> Deferred:
        """The daemon's shutdown: ``stop`` then every process."""
        return maybeDeferred(self.stop).addBoth(lambda _: self.stopProcesses())

    # -- traffic generation (SEER's life cycle) -----------------------------------------

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
        process = self.spawn([sys.executable, "-m", "backend.runtime.trafficcontroller", str(path)],
                             name="traffic-controller", on_line=self._traffic_controller_line)
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


class TrafficAgent(Agent):
    """A traffic generator: START is TGStart, STOP is TGStop.

    Subclasses implement ``serverExec`` and ``clientExec`` (and may override
    ``clientInit``, ``clientOneLoop``, ``serverStop``); their own VARIABLES
    add to TRAFFIC_VARIABLES.
    """

    MENU = "Traffic"
    VARIABLES = TRAFFIC_VARIABLES

    def handleSTART(self) -> Deferred:
        return self.TGStart()

    def handleSTOP(self) -> Deferred:
        return self.TGStop()
