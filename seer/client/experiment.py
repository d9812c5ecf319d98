"""Experiment scripts' API: the experiment, its agent groups, their commands.

SEER style::

    from seer.client import Experiment

    with Experiment() as exp:                      # controller and certs from
        web = exp.agent("HTTP", "web1")           # SEER_CONTROLLER, SEER_CERTS,
        web.set(NODES="client1 client2",          # SEER_IDENTITY or defaults
                think="minmax(0.1,0.9)")
        web.start()
        ...
        web.stop()

or SEER's own ``a = Agent('HTTP', 'web1'); a.Set({...}); a.Start()`` on a
default experiment from the environment.  Every command returns a
:class:`~seer.client.values.Result` with each targeted node's outcome and
raises :class:`~seer.client.errors.CommandFailed` when a node failed or did
not confirm, unless ``check=False``; :class:`Pending` is a command in flight.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from seer.client.connection import Connection
from seer.client.errors import CommandFailed, RequestRefused, SeerError
from seer.client.files import ChunkWriter
from seer.client.phases import PHASES_FILE, Phase, PhaseLog
from seer.client.polling import poll
from seer.client.values import Outcome, Result
from seer.protocol.wire import Frame

#: Extra seconds to wait for the controller's RESULT beyond the nodes' timeout.
RESULT_MARGIN = 5.0


class Experiment:
    """A session with the controller: nodes, agent groups, commands.

    In a script run by `seer run` (``teardown``, by default), closing the
    experiment -- at the end of a ``with`` block, on an error, on Ctrl-C --
    stops every agent group it started.  ``now()``, ``at()`` and the
    ``sleep`` methods count from the experiment's start.  ``mark()``
    names its phases, in ``phases_file`` (None: not written), which by
    default is results/phases.csv: under `seer run`, part of the run record.
    """

    def __init__(
        self,
        controller: str | None = None,
        certs: str | Path | None = None,
        identity: str | None = None,
        timeout: float = 10.0,
        teardown: bool | None = None,
        phases_file: str | Path | None = Path("results") / PHASES_FILE,
        testbed: str | None = None,
    ) -> None:
        self.connection = Connection(controller, certs, identity, testbed=testbed)
        self.timeout = timeout
        self.teardown = bool(os.environ.get("SEER_RUN")) if teardown is None else teardown
        #: When the experiment started (seconds since 1970): `seer run` sets it.
        self.started_at = float(os.environ.get("SEER_EXPERIMENT_START") or time.time())
        self._started: dict[tuple[str, str], Any] = {}
        self._phases = PhaseLog(phases_file, self.started_at)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        closed_at = time.time()  # the open phase ends here, not after the STOPs
        try:
            if self.teardown:
                self.stop_started()
        finally:
            try:
                self._phases.close(closed_at)
            finally:
                self.connection.close()

    def stop_started(self) -> None:
        """STOP every agent group this experiment started and did not stop."""
        for (agent_type, group), target in list(self._started.items()):
            try:
                self.command(agent_type, group, "STOP", target=target, check=False)
            except SeerError:
                pass
        self._started.clear()

    # -- time -----------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the experiment started."""
        return time.time() - self.started_at

    def time(self, t: float) -> float:
        """The absolute time of ``t`` seconds after the start (for ``at=``)."""
        return self.started_at + t

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def sleep_until(self, t: float) -> None:
        """Sleep until ``t`` seconds after the experiment's start."""
        self.sleep(self.time(t) - time.time())

    def at(self, t: float, group: AgentGroup, command: str = "START",
           args: dict[str, Any] | None = None, **options: Any) -> Pending:
        """Send ``command`` now for every node to run at ``t`` seconds after
        the start (the message's time header: nodes act together, however
        the datagram travelled).  Returns at once; ``.result()`` waits."""
        return group.submit(command, args, at=self.time(t), **options)

    # -- phases -------------------------------------------------------------------------

    def mark(self, name: str, *, at: float | None = None) -> Phase:
        """Begin the phase ``name`` now, or at ``at`` (an absolute time, e.g.
        ``exp.time(60)`` for the moment a scheduled command acts), ending
        the phase before it.  Reports shade and label every phase."""
        return self._phases.mark(name, time.time() if at is None else at)

    def end_phase(self, *, at: float | None = None) -> Phase | None:
        """End the current phase now (or at ``at``) without beginning another."""
        return self._phases.end(time.time() if at is None else at)

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """``with exp.phase("during"): ...``: the phase lasts as long as the block."""
        phase = self.mark(name)
        try:
            yield phase
        finally:
            if phase.end is None:
                self.end_phase()

    @property
    def phases(self) -> list[Phase]:
        """The phases marked so far, in order (Unix times; the open one's end None)."""
        return list(self._phases.phases)

    # -- waiting for conditions ----------------------------------------------------------

    def wait_until(self, condition: Callable[[], Any], *, timeout: float, interval: float = 0.5,
                   what: str = "the condition") -> Any:
        """Poll ``condition()`` until it returns something true; SeerError after
        ``timeout`` seconds."""
        value, held = poll(condition, bool, timeout=timeout, interval=interval)
        if not held:
            raise SeerError(f"{what} did not hold within {timeout:g} s")
        return value

    def wait_for_counter(self, group: AgentGroup, name: str, *, total: float | None = None,
                         each: float | None = None, target: Any = None, timeout: float = 60.0,
                         interval: float = 0.5) -> dict[str, float]:
        """Wait until counter ``name`` of ``group`` reaches ``total`` summed over
        the nodes, or ``each`` on every node; returns the values by node.  The
        error after ``timeout`` names the nodes that did not get there."""
        if total is None and each is None:
            raise ValueError("give total= or each=")

        def reached(values: dict[str, float]) -> bool:
            return bool(values) and (total is None or sum(values.values()) >= total) and \
                (each is None or all(v >= each for v in values.values()))

        values, held = poll(lambda: group.counter(name, target=target), reached,
                            timeout=timeout, interval=interval)
        if not held:
            short = {n: v for n, v in values.items() if each is not None and v < each}
            detail = f"in all {sum(values.values()):g} of {total:g}" if total is not None \
                else "not there: " + ", ".join(f"{n} ({v:g})" for n, v in sorted(short.items()))
            raise SeerError(f"{group.agent_type} {group.group} {name}: {detail} after "
                            f"{timeout:g} s")
        return values

    # -- nodes and agents ---------------------------------------------------------

    def nodes(self) -> list[dict[str, Any]]:
        return self.connection.request({"type": "NODES"}).get("nodes")

    def node_table(self) -> dict[str, Any]:
        """The whole NODES reply: nodes, serial, epoch, never_registered."""
        return self.connection.request({"type": "NODES"}).header

    def wait_for_nodes(self, nodes: list[str] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the named (default: the controller's required) nodes are up."""
        header: dict[str, Any] = {"type": "WAIT", "timeout": timeout}
        if nodes is not None:
            header["nodes"] = list(nodes)
        return self.connection.request(header, timeout + RESULT_MARGIN).header

    def agents(self) -> dict[str, Any]:
        return self.connection.request({"type": "AGENTS"}).header

    def groups(self, target: Any = None) -> dict[str, list[dict[str, Any]]]:
        """Each node's agent groups as the controller has them: variables and
        run state (``running``, ``stopped``, ``finished`` with ``why``)."""
        return self.connection.request({"type": "GROUPS", "target": target}).get("groups")

    def forget(self, node: str) -> None:
        """Drop a node that is gone for good (it must be down)."""
        self.connection.request({"type": "FORGET", "node": node})

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest jobs, newest first (time, sender, agent/group, command,
        target, outcome counts)."""
        return self.connection.request({"type": "JOBS", "limit": limit}).get("jobs")

    def job(self, job: int) -> dict[str, Any]:
        """One job with every node's outcome, late ones included."""
        return self.connection.request({"type": "JOB", "job": job}).get("job")

    def status(self) -> dict[str, Any]:
        return self.connection.request({"type": "STATUS"}).header

    def stats(self, history: float = 0, *, prefixes: list[str] | None = None,
              commands: int = 0) -> dict[str, Any]:
        """The controller's aggregate of the nodes' readings: rates per link,
        node, interface and agent group (``aggregate``), where Prometheus
        scrapes (``metrics``); with ``history`` seconds of past aggregates
        (``history``: times and series, keys like ``links/NAME/bps``, those
        starting with one of ``prefixes``) and the last ``commands``
        entries of the command log."""
        header: dict[str, Any] = {"type": "STATS", "history": history, "commands": commands}
        if prefixes:
            header["prefixes"] = list(prefixes)
        reply = self.connection.request(header).header
        return {k: v for k, v in reply.items() if k not in ("type", "id")}

    def subscribe_stats(self) -> dict[str, Any]:
        """Become a stats sink: an AGGREGATE frame every interval and a
        COMMAND_LOG frame for every finished command come to :meth:`events`;
        returns the current aggregate, as :meth:`stats` does."""
        reply = self.connection.request({"type": "STATS", "subscribe": True}).header
        return {k: v for k, v in reply.items() if k not in ("type", "id")}

    def subscribe(self) -> None:
        """Become a sink: agents' REPORT and STREAM frames and the
        controller's STATUS updates come to :meth:`events`."""
        self.connection.request({"type": "SUBSCRIBE"})

    def events(self, timeout: float | None = None) -> Iterator[Frame]:
        """Frames sent to this sink, as they come; stops after ``timeout`` s."""
        return self.connection.events(timeout)

    def wait_for_event(self, event: str, *, nodes: list[str] | None = None,
                       agent: str | None = None, group: str | None = None,
                       timeout: float = 30.0) -> dict[str, Frame]:
        """Wait until each of ``nodes`` (default: any one) reported ``event``;
        returns the reports by node.  Call :meth:`subscribe` first."""
        wanted = set(nodes or [])
        seen: dict[str, Frame] = {}
        for frame in self.events(timeout):
            if frame.type != "REPORT" or frame.get("event") != event:
                continue
            if (agent and frame.get("agent") != agent) or (group and frame.get("group") != group):
                continue
            seen[frame.get("node")] = frame
            if (wanted and wanted <= set(seen)) or (not wanted and seen):
                return seen
        missing = sorted(wanted - set(seen)) if wanted else ["any node"]
        raise SeerError(f"no {event!r} report from {', '.join(missing)} within {timeout:.0f} s")

    def agent(self, agent_type: str, group: str) -> AgentGroup:
        return AgentGroup(self, agent_type, group)

    # -- messages --------------------------------------------------------------------

    def _submit(self, header: dict[str, Any], what: str, timeout: float | None,
                 blob: bytes = b"", on_file: Callable[[Frame], None] | None = None) -> Pending:
        timeout = self.timeout if timeout is None else timeout
        header = dict(header, timeout=timeout)
        wait = timeout + RESULT_MARGIN + (header.get("delay") or 0)  # "after", on the wire
        wait += max(0.0, (header.get("time") or 0) - time.time())
        return Pending(self.connection, self.connection.send(header, blob), what, wait, on_file)

    def submit_command(self, agent_type: str, group: str, command: str,
                       args: dict[str, Any] | None = None, *, target: Any = None,
                       timeout: float | None = None, at: float | None = None,
                       after: float | None = None) -> Pending:
        """Send a command without waiting; ``.result()`` waits for its outcomes.

        Many commands can be in flight at once on one connection.
        """
        if command == "START":
            self._started[(agent_type, group)] = target
        elif command == "STOP" and self._started.get((agent_type, group), target) == target:
            self._started.pop((agent_type, group), None)
        header = {"type": "COMMAND", "agent": agent_type, "group": group,
                  "command": command, "args": args or {}, "target": target}
        header.update(_when(at, after))
        return self._submit(header, f"{command} {agent_type} {group}", timeout)

    def submit_set(self, agent_type: str, group: str, variables: dict[str, Any], *,
                   target: Any = None, timeout: float | None = None, at: float | None = None,
                   after: float | None = None) -> Pending:
        """Send a SET without waiting; ``.result()`` waits for its outcomes."""
        header = {"type": "SET", "agent": agent_type, "group": group, "vars": variables,
                  "target": target}
        header.update(_when(at, after))
        return self._submit(header, f"SET {agent_type} {group}", timeout)

    def put(self, source: str | Path | bytes, name: str | None = None, *, kind: str = "file",
            mode: int = 0o644, target: Any = None, timeout: float | None = None,
            check: bool = True) -> Result:
        """Send a file to the targeted nodes (their ``files/NAME``).

        ``source`` is a local path or the content itself; with ``kind="agent"``
        it is an agent module, loaded at once on every node (no restart).
        """
        if isinstance(source, (bytes, bytearray)):
            if name is None:
                raise ValueError("give a name when putting bytes")
            content = bytes(source)
        else:
            try:
                content = Path(source).read_bytes()
            except OSError as e:
                raise SeerError(f"cannot read {source}: {e.strerror}; nothing was sent") from None
            name = name or Path(source).name
        header = {"type": "PUT", "name": name, "kind": kind, "mode": mode, "target": target}
        return self._submit(header, f"PUT {name}", timeout, blob=content).result(check)

    def put_agent(self, path: str | Path, *, target: Any = None, timeout: float | None = None,
                  check: bool = True) -> Result:
        """PUT an agent module to the nodes and load it there at once."""
        return self.put(path, kind="agent", target=target, timeout=timeout, check=check)

    def get(self, name: str, *, into: str | Path = "results", target: Any = None,
            timeout: float | None = None, check: bool = True) -> Result:
        """Bring ``name`` (relative to each node's work folder) back from the
        targeted nodes into ``INTO/NODE/NAME``; each outcome's result has
        the local ``path``, ``size`` and ``sha256``."""
        into = Path(into)
        paths: dict[str, Path] = {}

        def on_file(frame: Frame) -> None:
            node = frame.get("node")
            paths[node] = into / node / frame.get("name")
            writer.write(paths[node], frame)

        with ChunkWriter() as writer:
            result = self._submit({"type": "GET", "name": name, "target": target},
                                  f"GET {name}", timeout, on_file=on_file).result(check=False)
        for node, outcome in result.outcomes.items():
            if node in paths and isinstance(outcome.result, dict):
                outcome.result["path"] = str(paths[node])
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def command(self, agent_type: str, group: str, command: str, args: dict[str, Any] | None = None,
                *, check: bool = True, **options: Any) -> Result:
        """Send a command to an agent group and wait for every node's outcome."""
        return self.submit_command(agent_type, group, command, args, **options).result(check)

    def set(self, agent_type: str, group: str, variables: dict[str, Any], *,
            check: bool = True, **options: Any) -> Result:
        """Set an agent group's variables and wait for every node's outcome."""
        return self.submit_set(agent_type, group, variables, **options).result(check)


class Pending:
    """A message sent to the experiment whose outcomes have not been read yet."""

    def __init__(self, connection: Connection, request_id: Any, what: str, wait: float,
                 on_file: Callable[[Frame], None] | None = None) -> None:
        self.connection = connection
        self.request_id = request_id
        self.what = what
        self.wait = wait
        self.on_file = on_file
        self._result: Result | None = None

    def result(self, check: bool = True) -> Result:
        """Wait for every targeted node's outcome (raises CommandFailed if ``check``)."""
        if self._result is None:
            accepted = self.connection.wait(self.request_id, 30.0)
            if accepted.type == "ERROR":
                raise RequestRefused(accepted.get("error"))
            final = self.connection.wait(self.request_id, self.wait)
            while final.type == "FILE":  # a GET's files come before its RESULT
                if self.on_file is not None:
                    self.on_file(final)
                final = self.connection.wait(self.request_id, self.wait)
            outcomes = {
                node: Outcome(node, o.get("status", "?"), o.get("error"), o.get("result"),
                              o.get("at"))
                for node, o in (final.get("outcomes") or {}).items()
            }
            self._result = Result(self.what, accepted.get("serial"),
                                  accepted.get("nodes") or [], outcomes)
        if check and not self._result.ok:
            raise CommandFailed(self._result)
        return self._result


def _when(at: float | None, after: float | None) -> dict[str, float]:
    out = {}
    if at is not None:
        out["time"] = at
    if after is not None:
        out["delay"] = after
    return out


class AgentGroup:
    """An agent group -- (agent type, group name) -- on the experiment's nodes."""

    def __init__(self, experiment: Experiment, agent_type: str, group: str) -> None:
        self.experiment = experiment
        self.agent_type = agent_type
        self.group = group

    def __repr__(self) -> str:
        return f"AgentGroup({self.agent_type!r}, {self.group!r})"

    def set(self, variables: dict[str, Any] | None = None, *, target: Any = None,
            timeout: float | None = None, at: float | None = None, after: float | None = None,
            check: bool = True, **more: Any) -> Result:
        """Set variables (a dict and/or keywords); values may be per-node tables.

        The keywords target, timeout, at, after and check are options, not
        variables: put a variable of one of those names in the dict.
        """
        merged = dict(variables or {}, **more)
        return self.experiment.set(self.agent_type, self.group, merged, target=target,
                                   timeout=timeout, at=at, after=after, check=check)

    def command(self, command: str, args: dict[str, Any] | None = None, **options: Any) -> Result:
        return self.experiment.command(self.agent_type, self.group, command, args, **options)

    def submit(self, command: str, args: dict[str, Any] | None = None,
               **options: Any) -> Pending:
        """Send a command without waiting for its outcomes."""
        return self.experiment.submit_command(self.agent_type, self.group, command, args,
                                              **options)

    def stats(self, target: Any = None) -> dict[str, Any]:
        """Each node's STATS: its counters (and its clients' under "clients")."""
        result = self.command("STATS", target=target, check=False)
        return {n: o.result for n, o in result.outcomes.items() if o.ok and o.result}

    def counter(self, name: str, target: Any = None) -> dict[str, float]:
        """One counter by node, wherever the agent keeps it (its own counters,
        its clients' or its results)."""
        values = {}
        for node, stats in self.stats(target).items():
            for place in (stats.get("counters") or {}, stats.get("clients") or {}, stats):
                if isinstance(place.get(name), (int, float)):
                    values[node] = place[name]
                    break
        return values

    def start(self, **options: Any) -> Result:
        return self.command("START", **options)

    def stop(self, **options: Any) -> Result:
        return self.command("STOP", **options)

    # SEER's spelling.
    Set = set
    Start = start
    Stop = stop


def Agent(agent_type: str, group: str, experiment: Experiment | None = None) -> AgentGroup:
    """SEER-style ``Agent('HTTP', 'web1')`` on the default experiment (from the
    environment), made at the first call."""
    if experiment is None:
        # The default is kept as seer.client._default_experiment, where scripts
        # and tests written against the one-module client find and reset it.
        import seer.client as package

        if package._default_experiment is None:
            package._default_experiment = Experiment()
        experiment = package._default_experiment
    return experiment.agent(agent_type, group)
