"""seer.client -- the blocking Python API for experiment scripts and the CLI.

SEER style::

    from seer.client import Experiment

    with Experiment() as exp:                      # controller and certs from
        web = exp.agent("HTTP", "web1")           # SEER_CONTROLLER, SEER_CERTS,
        web.set(NODES="client1 client2",          # SEER_IDENTITY or defaults
                think="minmax(0.1,0.9)")
        web.start()
        ...
        web.stop()

Every command returns a :class:`Result` with each targeted node's
:class:`Outcome` -- ``applied``, ``failed`` (with the agent's error),
``skipped`` (not in the group's NODES) or ``unconfirmed`` (no answer before
the timeout, with the reason) -- and raises :class:`CommandFailed` when a
node failed or did not confirm, unless ``check=False``.

The API is plain blocking sockets (standard-library ``ssl``), so a script
needs no reactor.  It speaks the same frames as every SEER process
(:mod:`seer.protocol.wire`).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from seer.protocol.certs import CONTROLLER_NAME, CertDirectory, CertError
from seer.config import ConfigError, parse_hostport
from seer.testbed.state import client_defaults
from seer.protocol.tls import client_context
from seer.protocol.wire import Frame, FrameDecoder, WireError, encode_frame

DEFAULT_CONTROLLER = "127.0.0.1:7700"
#: Extra seconds to wait for the controller's RESULT beyond the nodes' timeout.
RESULT_MARGIN = 5.0
OK_STATUSES = ("applied", "skipped")
SINK_FRAMES = ("REPORT", "STREAM", "STATUS")


class SeerError(Exception):
    """Base of every error the client raises."""


class ControllerUnreachable(SeerError):
    """No connection to the controller, or it went away mid-request."""


class RequestRefused(SeerError):
    """The controller refused the request; nothing was sent or changed."""


class CommandFailed(SeerError):
    """At least one targeted node failed or did not confirm."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.problem_summary())
        self.result = result


@dataclass(frozen=True)
class Outcome:
    node: str
    status: str
    error: str | None = None
    result: Any = None
    #: When the node started on the message (its clock, seconds since 1970).
    at: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def describe(self, result_width: int = 70) -> str:
        """One line: the status, then the error or a compact form of the result."""
        text = self.status
        if self.error:
            text += f": {self.error}"
        elif isinstance(self.result, dict) and self.result.get("via") == "snapshot":
            text += " (via snapshot)"
        elif self.result not in (None, {}, []):
            shown = json.dumps(self.result, separators=(",", ":"))
            if len(shown) > result_width:
                shown = shown[: result_width - 3] + "..."
            text += f"  {shown}"
        return text


@dataclass
class Result:
    """The outcome of one message on every node it targeted."""

    what: str
    serial: int
    nodes: list[str]
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes.values()) and len(self.outcomes) == len(self.nodes)

    def by_status(self, status: str) -> list[str]:
        return [n for n, o in self.outcomes.items() if o.status == status]

    @property
    def failed(self) -> list[str]:
        return self.by_status("failed")

    @property
    def unconfirmed(self) -> list[str]:
        return self.by_status("unconfirmed")

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def skew(self) -> float | None:
        """Seconds between the first and the last node starting on it."""
        times = [o.at for o in self.outcomes.values() if o.at is not None]
        return max(times) - min(times) if len(times) > 1 else None

    def problem_summary(self) -> str:
        bad = [o for o in self.outcomes.values() if not o.ok]
        lines = [f"{self.what}: {len(bad)} of {len(self.nodes)} nodes did not apply it"]
        lines += [f"  {o.node}: {o.describe()}" for o in bad[:20]]
        if len(bad) > 20:
            lines.append(f"  ... and {len(bad) - 20} more")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what, "serial": self.serial, "nodes": self.nodes, "ok": self.ok,
            "outcomes": {
                n: {k: v for k, v in (("status", o.status), ("error", o.error),
                                      ("result", o.result), ("at", o.at)) if v is not None}
                for n, o in self.outcomes.items()
            },
        }


def _credentials(certs: str | Path, identity: str | None) -> tuple[CertDirectory, str]:
    directory = CertDirectory(certs)
    if identity:
        return directory, identity
    names = directory.experimenters()
    if len(names) == 1:
        return directory, names[0]
    if not names:
        raise CertError(
            f"no experimenter certificate in {directory.root}/experimenters; create one with "
            f"`seer certs init --dir {directory.root} --experimenter NAME`"
        )
    raise CertError(
        f"several experimenter certificates in {directory.root} ({', '.join(names)}); "
        "choose one with --identity or SEER_IDENTITY"
    )


class Connection:
    """One connection to the controller, speaking frames, blocking.

    Mutual TLS normally; ``unix:PATH`` with a token (``SEER_TOKEN``) for a
    script the controller itself runs (`seer run`).
    """

    def __init__(
        self,
        controller: str | None = None,
        certs: str | Path | None = None,
        identity: str | None = None,
        connect_timeout: float = 10.0,
        server_name: str = CONTROLLER_NAME,
    ) -> None:
        controller = controller or os.environ.get("SEER_CONTROLLER")
        if controller is None:
            # The shell that ran `seer testbed up` talks to that testbed.
            testbed = client_defaults()
            if testbed is not None:
                controller = testbed["controller"]
                certs = certs or os.environ.get("SEER_CERTS") or testbed["certs"]
                identity = identity or os.environ.get("SEER_IDENTITY") or testbed["identity"]
        controller = controller or DEFAULT_CONTROLLER
        self._decoder = FrameDecoder()
        self._replies: dict[Any, deque[Frame]] = {}
        self._events: deque[Frame] = deque()
        self._ids = itertools.count(1)
        if controller.startswith("unix:"):
            self._connect_local(controller[len("unix:"):], connect_timeout)
            return
        certs = certs or os.environ.get("SEER_CERTS") or "certs"
        identity = identity or os.environ.get("SEER_IDENTITY") or None
        try:
            host, port = parse_hostport(controller, "controller")
        except ConfigError as e:
            raise SeerError(str(e)) from None
        directory, self.identity = _credentials(certs, identity)
        own = directory.require(directory.experimenter(self.identity),
                                f"experimenter {self.identity}")
        context = client_context(directory.ca.cert, own)
        self.address = f"{host}:{port}"
        try:
            raw = socket.create_connection((host, port), timeout=connect_timeout)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle waits
        except OSError as e:
            raise ControllerUnreachable(
                f"cannot connect to the controller at {self.address}: {e.strerror or e}; "
                "is `seer controller` running there?"
            ) from None
        try:
            self._sock = context.wrap_socket(raw, server_hostname=server_name)
        except (ssl.SSLError, OSError) as e:
            raw.close()
            raise ControllerUnreachable(
                f"TLS with {self.address} failed: {e}; are the certificates from the "
                "same `seer certs init` as the controller's?"
            ) from None

    def _connect_local(self, path: str, timeout: float) -> None:
        token = os.environ.get("SEER_TOKEN")
        if not token:
            raise SeerError("SEER_CONTROLLER is a unix: socket but SEER_TOKEN is not set; "
                            "such sockets are for scripts run with `seer run`")
        self.address = f"unix:{path}"
        self.identity = os.environ.get("SEER_IDENTITY") or "experimenter"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError as e:
            raise ControllerUnreachable(f"cannot connect to {self.address}: {e}") from None
        self.request({"type": "HELLO", "token": token}, timeout)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def send(self, header: dict[str, Any], blob: bytes = b"") -> Any:
        """Send a request; returns its id."""
        request_id = next(self._ids)
        try:
            self._sock.sendall(encode_frame(dict(header, id=request_id), blob))
        except OSError as e:
            raise ControllerUnreachable(f"lost the controller at {self.address}: {e}") from None
        return request_id

    def wait(self, request_id: Any, timeout: float) -> Frame:
        """The next frame answering ``request_id``, within ``timeout`` seconds."""
        frame = self.poll(request_id, timeout)
        if frame is None:
            raise ControllerUnreachable(
                f"no answer from the controller at {self.address} within {timeout:.0f} s"
            )
        return frame

    def poll(self, request_id: Any, timeout: float) -> Frame | None:
        """Like :meth:`wait`, but None when nothing came within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            queue = self._replies.get(request_id)
            if queue:
                frame = queue.popleft()
                if not queue:
                    del self._replies[request_id]
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._read(remaining, quiet_timeout=True)

    def request(self, header: dict[str, Any], timeout: float = 30.0) -> Frame:
        """Send and wait for the reply; ERROR replies raise RequestRefused."""
        frame = self.wait(self.send(header), timeout)
        if frame.type == "ERROR":
            raise RequestRefused(frame.get("error"))
        return frame

    def events(self, timeout: float | None = None) -> Iterator[Frame]:
        """Frames not answering a request (REPORT, STREAM, STATUS to sinks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._events:
                yield self._events.popleft()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self._read(remaining if remaining is not None else 3600.0, quiet_timeout=True)

    def _read(self, timeout: float, quiet_timeout: bool = False) -> None:
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(1 << 16)
        except TimeoutError:
            if quiet_timeout:
                return
            raise ControllerUnreachable(f"the controller at {self.address} stopped answering") from None
        except (OSError, ssl.SSLError) as e:
            raise ControllerUnreachable(f"lost the controller at {self.address}: {e}") from None
        if not data:
            raise ControllerUnreachable(f"the controller at {self.address} closed the connection")
        try:
            frames = self._decoder.feed(data)
        except WireError as e:
            raise ControllerUnreachable(f"garbled data from {self.address}: {e}") from None
        for frame in frames:
            # Sink frames never answer a request, whatever they carry.
            if frame.get("id") is not None and frame.type not in SINK_FRAMES:
                self._replies.setdefault(frame.get("id"), deque()).append(frame)
            else:
                self._events.append(frame)


class Experiment:
    """A session with the controller: nodes, agent groups, commands.

    In a script run by `seer run` (``teardown``, by default), closing the
    experiment -- at the end of a ``with`` block, on an error, on Ctrl-C --
    stops every agent group it started.  ``now()``, ``at()`` and the
    ``sleep`` methods count from the experiment's start.
    """

    def __init__(
        self,
        controller: str | None = None,
        certs: str | Path | None = None,
        identity: str | None = None,
        timeout: float = 10.0,
        teardown: bool | None = None,
    ) -> None:
        self.connection = Connection(controller, certs, identity)
        self.timeout = timeout
        self.teardown = bool(os.environ.get("SEER_RUN")) if teardown is None else teardown
        #: When the experiment started (seconds since 1970): `seer run` sets it.
        self.started_at = float(os.environ.get("SEER_EXPERIMENT_START") or time.time())
        self._started: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self.teardown:
                self.stop_started()
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

    # -- waiting for conditions ----------------------------------------------------------

    def wait_until(self, condition: Callable[[], Any], *, timeout: float, interval: float = 0.5,
                   what: str = "the condition") -> Any:
        """Poll ``condition()`` until it returns something true; SeerError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise SeerError(f"{what} did not hold within {timeout:g} s")
            time.sleep(interval)

    def wait_for_counter(self, group: AgentGroup, name: str, *, total: float | None = None,
                         each: float | None = None, target: Any = None, timeout: float = 60.0,
                         interval: float = 0.5) -> dict[str, float]:
        """Wait until counter ``name`` of ``group`` reaches ``total`` summed over
        the nodes, or ``each`` on every node; returns the values by node.  The
        error after ``timeout`` names the nodes that did not get there."""
        if total is None and each is None:
            raise ValueError("give total= or each=")
        deadline = time.monotonic() + timeout
        while True:
            values = group.counter(name, target=target)
            if values and (total is None or sum(values.values()) >= total) and \
                    (each is None or all(v >= each for v in values.values())):
                return values
            if time.monotonic() >= deadline:
                short = {n: v for n, v in values.items() if each is not None and v < each}
                detail = f"in all {sum(values.values()):g} of {total:g}" if total is not None \
                    else "not there: " + ", ".join(f"{n} ({v:g})" for n, v in sorted(short.items()))
                raise SeerError(f"{group.agent_type} {group.group} {name}: {detail} after "
                                f"{timeout:g} s")
            time.sleep(interval)

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

    def status(self) -> dict[str, Any]:
        return self.connection.request({"type": "STATUS"}).header

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
            content = Path(source).read_bytes()
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
        files: dict[str, Any] = {}

        def on_file(frame: Frame) -> None:
            node = frame.get("node")
            path = into / node / frame.get("name")
            if node not in files:
                path.parent.mkdir(parents=True, exist_ok=True)
                files[node] = (path, open(path, "wb"))
            handle = files[node][1]
            handle.seek(frame.get("offset") or 0)
            handle.write(frame.blob)
            if frame.get("last"):
                handle.close()

        try:
            result = self._submit({"type": "GET", "name": name, "target": target},
                                  f"GET {name}", timeout, on_file=on_file).result(check=False)
        finally:
            for _, handle in files.values():
                handle.close()
        for node, outcome in result.outcomes.items():
            if node in files and isinstance(outcome.result, dict):
                outcome.result["path"] = str(files[node][0])
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


_default_experiment: Experiment | None = None


def Agent(agent_type: str, group: str, experiment: Experiment | None = None) -> AgentGroup:
    """SEER-style ``Agent('HTTP', 'web1')`` on the default experiment (from the environment)."""
    global _default_experiment
    if experiment is None:
        if _default_experiment is None:
            _default_experiment = Experiment()
        experiment = _default_experiment
    return experiment.agent(agent_type, group)
