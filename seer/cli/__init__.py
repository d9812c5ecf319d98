"""The `seer` command line.

Processes:   seer controller | seer daemon | seer certs init
Experiment:  seer run | seer watch | seer nodes | seer agents | seer set |
             seer start | seer stop | seer command | seer put | seer get |
             seer status

Exit codes (experiment commands): 0 every targeted node applied it (or was
skipped as not in the group's NODES); 1 a node failed or did not confirm;
2 the request was refused or the command line is wrong; 3 the controller
could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from seer import __version__

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3

EPILOG = """\
exit codes: 0 all targeted nodes applied it; 1 a node failed or did not
confirm; 2 refused (bad request, nothing sent); 3 controller unreachable.

The controller and credentials come from --controller/--certs/--identity,
else SEER_CONTROLLER, SEER_CERTS, SEER_IDENTITY, else the testbed `seer
testbed up` started (SEER_TESTBED names one if several run), else
127.0.0.1:7700, ./certs and the only experimenter certificate there.
"""


# -- helpers ------------------------------------------------------------------------


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """VAR=VALUE and VAR@NODE=VALUE pairs into a SET's vars.

    A value that reads as JSON (5, 0.5, true, ["a","b"]) is taken as such;
    anything else is a string, so think=minmax(0.1,0.9) needs no quoting.
    VAR@NODE gives that node its own value (SEER's per-node variables).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r} is not VAR=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        name, at, node = key.partition("@")
        if at:
            table = out.setdefault(name, {})
            if not isinstance(table, dict):
                table = out[name] = {"*": table}
            table[node] = value
        elif isinstance(out.get(name), dict):
            out[name]["*"] = value
        else:
            out[name] = value
    return out


def _client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--controller", metavar="HOST:PORT",
                        help="the controller (default: $SEER_CONTROLLER or 127.0.0.1:7700)")
    parser.add_argument("--certs", metavar="DIR", help="certificate folder (default: $SEER_CERTS or ./certs)")
    parser.add_argument("--identity", metavar="NAME",
                        help="experimenter certificate to use (default: $SEER_IDENTITY or the only one)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _message_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", "-t", metavar="SPEC",
                        help="nodes: all (default), names with shell wildcards (client*), "
                             "@ATTR[=VALUE], has:LABEL; comma separated")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="how long to wait for every node's outcome (default: the controller's, 10 s)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--after", type=float, metavar="SECONDS",
                      help="act this many seconds from now, on every node together")
    when.add_argument("--at", type=float, metavar="UNIX_TIME", help="act at this time")


def _experiment(args: argparse.Namespace):
    from seer.client import Experiment

    return Experiment(args.controller, args.certs, args.identity)


def _print_result(result: Any, as_json: bool) -> int:
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"{result.what}: serial {result.serial}, {len(result.nodes)} node(s)")
        width = max((len(n) for n in result.nodes), default=4)
        for node in result.nodes:
            outcome = result.outcomes.get(node)
            text = outcome.describe() if outcome else "unconfirmed: no answer"
            print(f"  {node:<{width}}  {text}")
        counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts().items()))
        print(counts or "no outcomes")
    return EXIT_OK if result.ok else EXIT_FAILED


# -- experiment commands -------------------------------------------------------------


def cmd_set(args: argparse.Namespace) -> int:
    try:
        variables = parse_assignments(args.assignments)
    except ValueError as e:
        raise UsageError(str(e)) from None
    with _experiment(args) as exp:
        result = exp.set(args.agent, args.group, variables, target=args.target,
                         timeout=args.timeout, at=args.at, after=args.after, check=False)
    return _print_result(result, args.json)


def _run_command(args: argparse.Namespace, command: str, arguments: dict[str, Any]) -> int:
    with _experiment(args) as exp:
        result = exp.command(args.agent, args.group, command, arguments, target=args.target,
                             timeout=args.timeout, at=args.at, after=args.after, check=False)
    return _print_result(result, args.json)


def cmd_start(args: argparse.Namespace) -> int:
    return _run_command(args, "START", {})


def cmd_stop(args: argparse.Namespace) -> int:
    return _run_command(args, "STOP", {})


def cmd_command(args: argparse.Namespace) -> int:
    try:
        arguments = parse_assignments(args.arguments)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return _run_command(args, args.command.upper(), arguments)


def cmd_put(args: argparse.Namespace) -> int:
    try:
        mode = int(args.mode, 8)
    except ValueError:
        raise UsageError(f"--mode {args.mode!r} is not an octal permission such as 644") from None
    with _experiment(args) as exp:
        result = exp.put(args.file, args.name, kind="agent" if args.agent else "file", mode=mode,
                         target=args.target, timeout=args.timeout, check=False)
    return _print_result(result, args.json)


def cmd_get(args: argparse.Namespace) -> int:
    with _experiment(args) as exp:
        result = exp.get(args.name, into=args.into, target=args.target, timeout=args.timeout,
                         check=False)
    return _print_result(result, args.json)


def cmd_run(args: argparse.Namespace) -> int:
    """Run a script on the controller; its output here, live; its results/ too."""
    from seer.client import Connection

    try:
        content = Path(args.script).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {args.script}: {e.strerror}") from None
    connection = Connection(args.controller, args.certs, args.identity)
    request_id = connection.send({"type": "EXECUTE", "name": Path(args.script).name,
                                  "args": args.args}, content)
    run = _RunView(args.quiet, Path(args.results))
    cancelled = False
    while True:
        # The whole turn is guarded, not only the poll: Ctrl-C often lands
        # while an OUTPUT frame is being written, and must still cancel.
        try:
            frame = connection.poll(request_id, 1.0)
            if frame is not None:
                code = run.handle(frame)
                if code is not None:
                    return code
        except KeyboardInterrupt:
            if cancelled or run.run_id is None:
                print("\nseer run: leaving; the controller stops the script and its agents",
                      file=sys.stderr)
                return 130
            cancelled = True
            print("\nseer run: stopping the script (Ctrl-C again to leave at once)...",
                  file=sys.stderr)
            connection.send({"type": "CANCEL", "run": run.run_id})


class _RunView:
    """What `seer run` shows and saves of a run's frames; its exit code at EXIT."""

    def __init__(self, quiet: bool, results: Path):
        self.quiet = quiet
        self.results = results
        self.run_id = None

    def handle(self, frame) -> int | None:
        from seer.client import RequestRefused

        if frame.type == "ERROR":
            raise RequestRefused(frame.get("error"))
        if frame.type == "ACCEPTED":
            self.run_id = frame.get("run")
            if not self.quiet:
                print(f"[seer run {self.run_id} on the controller]", file=sys.stderr)
        elif frame.type == "OUTPUT":
            stream = sys.stdout if frame.get("stream") == "stdout" else sys.stderr
            stream.write(frame.get("data"))
            stream.flush()
        elif frame.type == "FILE":
            self._save(frame)
        elif frame.type == "EXIT":
            code, signum = frame.get("code") or 0, frame.get("signal")
            if not self.quiet:
                how = f"signal {signum}" if signum else f"exit code {code}"
                print(f"[seer run {self.run_id}: {how}]", file=sys.stderr)
            return 128 + signum if signum else code
        return None

    def _save(self, frame) -> None:
        name = Path(frame.get("name"))
        path = self.results / (name.relative_to("results") if name.parts[:1] == ("results",)
                               else name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "r+b" if path.exists() and frame.get("offset") else "wb") as f:
            f.seek(frame.get("offset") or 0)
            f.write(frame.blob)


def cmd_nodes(args: argparse.Namespace) -> int:
    with _experiment(args) as exp:
        waited = None
        if args.wait is not None:
            waited = exp.wait_for_nodes(args.wait or None, args.timeout)
        table = exp.node_table()
    if args.json:
        print(json.dumps({"table": table, "wait": waited}, indent=2, default=str))
    else:
        nodes = table.get("nodes") or []
        print(f"epoch {table.get('epoch')}, serial {table.get('serial')}, "
              f"{sum(1 for n in nodes if n['up'])} of {len(nodes)} node(s) up")
        for n in nodes:
            state = "up" if n["up"] else ("down" if n["registered"] else "never registered")
            lag = n.get("lag")
            addresses = " ".join(n.get("addresses") or []) or "-"
            attrs = " ".join(f"{k}={v}" for k, v in (n.get("attributes") or {}).items())
            print(f"  {n['name']:<16} {state:<16} serial {n['serial']:<8} "
                  f"lag {lag if lag is not None else '-':<6} {addresses} {attrs}".rstrip())
        if waited is not None:
            if waited.get("ok"):
                print(f"all {len(waited['nodes'])} awaited node(s) are up")
            else:
                print(f"not up after {args.timeout:.0f} s: {', '.join(waited['missing'])}")
    if waited is not None and not waited.get("ok"):
        return EXIT_FAILED
    return EXIT_OK


def cmd_agents(args: argparse.Namespace) -> int:
    with _experiment(args) as exp:
        reply = exp.agents()
    if args.json:
        print(json.dumps({"agents": reply.get("agents"), "errors": reply.get("errors")}, indent=2))
        return EXIT_OK
    agents = reply.get("agents") or {}
    if not agents:
        print("no agents: no node has registered yet")
    for name, a in sorted(agents.items()):
        print(f"{name} -- {a.get('nice', '')} [{a.get('menu', '')}]")
        print(f"  commands: {', '.join(a.get('commands', [])) or 'none'}")
        print(f"  on: {', '.join(a.get('nodes', []))}")
        for v in a.get("variables", []):
            default = "" if v.get("default") is None else f" = {v['default']!r}"
            print(f"    {v['name']} ({v['type']}{default}): {v.get('help', '')}")
    for node, errors in (reply.get("errors") or {}).items():
        for e in errors:
            print(f"{node}: could not load {e['source']}: {e['error']}", file=sys.stderr)
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from seer.watch import watch

    with _experiment(args) as exp:
        try:
            watch(exp, interval=args.interval, duration=args.duration, once=args.once)
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    with _experiment(args) as exp:
        status = exp.status()
    status = {k: v for k, v in status.items() if k not in ("type", "id")}
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    dg = status["datagrams"]
    print(f"controller {status['controller']} (SEER {status['version']}): epoch {status['epoch']}, "
          f"serial {status['serial']}, {status['window']} serials in the retransmit window, "
          f"{status['pending']} awaiting outcomes")
    print(f"sent {dg['messages']} message datagrams, {dg['pings']} pings, {dg['bytes']} bytes")
    up = [n for n in status["nodes"] if n["up"]]
    print(f"{len(up)} of {len(status['nodes'])} node(s) up; "
          f"largest lag {max((n['lag'] or 0 for n in up), default=0)}")
    for name, value in sorted(status["counters"].items()):
        print(f"  {name}: {value}")
    return EXIT_OK


# -- processes -----------------------------------------------------------------------


def _run_service(build: Callable[[Any], Any], what: str) -> int:
    """Run a Twisted service until SIGINT/SIGTERM; stop it cleanly."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    try:
        service = build(reactor)
    except (ValueError, OSError) as e:  # a bad node file, group, state folder ...
        print(f"{what} could not start: {e}", file=sys.stderr)
        return EXIT_REFUSED
    failed: list[str] = []

    def fail(message: str) -> None:
        failed.append(f"{what} could not start: {message}")
        if reactor.running:
            reactor.stop()

    def start() -> None:
        try:
            service.startService()
        except Exception as e:  # a start-up error: say what, stop, exit non-zero
            fail(str(e))
            return
        ready = getattr(service, "ready", None)
        if ready is not None:
            ready.addErrback(lambda f: fail(f.getErrorMessage()))

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown",
                                  lambda: service.stopService() if service.running else None)
    profile_to = os.environ.get("SEER_PROFILE")
    if profile_to:  # SEER_PROFILE=FILE: a cProfile of the whole run (docs/PERFORMANCE.md)
        import cProfile

        cProfile.runctx("reactor.run()", globals(), {"reactor": reactor},
                        f"{profile_to}.{os.getpid()}")
    else:
        reactor.run()
    if failed:
        print(failed[0], file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_controller(args: argparse.Namespace) -> int:
    from backend.tap import make_controller
    from seer.config import CONTROLLER_SETTINGS, load

    settings = load(CONTROLLER_SETTINGS, args.config, vars(args))
    return _run_service(lambda reactor: make_controller(settings, reactor), "controller")


def cmd_daemon(args: argparse.Namespace) -> int:
    from backend.tap import make_daemon
    from seer.config import DAEMON_SETTINGS, load

    settings = load(DAEMON_SETTINGS, args.config, vars(args))
    return _run_service(lambda reactor: make_daemon(settings, reactor), "daemon")


def cmd_certs_init(args: argparse.Namespace) -> int:
    from seer.protocol import certs
    from seer.config import read_nodefile

    nodes = list(args.nodes or [])
    nodes = [n for item in nodes for n in item.replace(",", " ").split()]
    if args.nodefile:
        nodes += read_nodefile(args.nodefile)
    if args.count:
        nodes += [f"{args.prefix}{i}" for i in range(1, args.count + 1)]
    experimenters = [n for item in (args.experimenter or ["experimenter"])
                     for n in item.replace(",", " ").split()]
    directory = certs.init(args.dir, nodes, experimenters, args.experiment,
                           args.controller_address or ["127.0.0.1"], args.force)
    print(f"certificates in {directory.root}: CA, controller, {len(nodes)} node(s), "
          f"experimenter(s) {', '.join(experimenters)}")
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    from seer.config import CONTROLLER_SETTINGS, DAEMON_SETTINGS, add_flags

    parser = argparse.ArgumentParser(
        prog="seer", description="SEER: control experiments on network testbeds.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"seer {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    sub.required = True

    def add(name: str, func: Callable, help_text: str, description: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=description or help_text,
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("controller", cmd_controller, "run the controller",
            "Run the controller: TLS listener for daemons and clients, signed multicast "
            "to the experiment, checkpoints in --state-dir. Stops cleanly on Ctrl-C/SIGTERM.")
    add_flags(p, CONTROLLER_SETTINGS)
    p = add("daemon", cmd_daemon, "run a node daemon",
            "Run the node daemon: joins the multicast group on --interface, connects to the "
            "controller, loads agents and runs what the controller sends.")
    add_flags(p, DAEMON_SETTINGS)

    certs = add("certs", lambda a: EXIT_REFUSED, "manage certificates")
    certs_sub = certs.add_subparsers(dest="certs_command", metavar="ACTION")
    certs_sub.required = True
    p = certs_sub.add_parser(
        "init", help="create the CA and certificates",
        description="Create the experiment's CA (kept if it exists, unless --force) and "
                    "certificates for the controller, the nodes and the experimenters. "
                    "Keys are written with mode 0600.")
    p.set_defaults(func=cmd_certs_init)
    p.add_argument("--dir", default="certs", help="folder to write to (default: certs)")
    p.add_argument("--nodes", action="append", metavar="N1,N2", help="node names")
    p.add_argument("--nodefile", help="file of node names, one per line")
    p.add_argument("--count", type=int, default=0, help="also make PREFIX1..PREFIXN nodes")
    p.add_argument("--prefix", default="node", help="prefix for --count (default: node)")
    p.add_argument("--experimenter", action="append", metavar="NAME",
                   help="experimenter certificate(s) (default: experimenter)")
    p.add_argument("--experiment", default="seer", help="experiment name in the certificates")
    p.add_argument("--controller-address", action="append", metavar="IP",
                   help="IP address(es) for the controller certificate (default: 127.0.0.1)")
    p.add_argument("--force", action="store_true", help="replace an existing CA")

    from seer.testbed.cli import add_commands

    add_commands(sub, EPILOG)

    p = add("nodes", cmd_nodes, "list the experiment's nodes",
            "List nodes: up/down/never registered, last serial, lag, addresses, attributes.")
    _client_flags(p)
    p.add_argument("--wait", nargs="*", metavar="NODE",
                   help="first wait until these nodes (default: the required ones) are up")
    p.add_argument("--timeout", type=float, default=30.0, help="for --wait (default: 30 s)")

    p = add("agents", cmd_agents, "list agent types with their commands and variables")
    _client_flags(p)

    p = add("watch", cmd_watch, "a live view of nodes, agent counters and reports",
            "Watch the experiment: nodes (up, serial, lag, drops, repairs), every agent "
            "group's counters as they stream, recent reports. Redraws in place on a "
            "terminal; Ctrl-C ends it.")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--once", action="store_true", help="print one view and exit")
    _client_flags(p)

    p = add("status", cmd_status, "show the controller's serial, window and counters")
    _client_flags(p)

    p = add("set", cmd_set, "set agent variables on nodes",
            "Set variables of an agent group: VAR=VALUE, or VAR@NODE=VALUE for one node's "
            "own value. Values that read as JSON are JSON; others are strings.")
    p.add_argument("agent", help="agent type, e.g. HTTP")
    p.add_argument("group", help="agent group name, e.g. web1")
    p.add_argument("assignments", nargs="+", metavar="VAR=VALUE")
    _message_flags(p)
    _client_flags(p)

    for name, func, text in (("start", cmd_start, "start an agent group"),
                             ("stop", cmd_stop, "stop an agent group")):
        p = add(name, func, text)
        p.add_argument("agent", help="agent type")
        p.add_argument("group", help="agent group name")
        _message_flags(p)
        _client_flags(p)

    p = add("run", cmd_run, "run an experiment script on the controller",
            "Upload SCRIPT and run it on the controller as a Python process of its own, with "
            "your identity; its output comes here live, its exit code is this command's, and "
            "the files it leaves in results/ come back into --results. Ctrl-C stops the "
            "script and the agent groups it started.")
    p.add_argument("script", help="the experiment script (Python)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.add_argument("--results", default="results", help="where its results go (default: results)")
    p.add_argument("--quiet", "-q", action="store_true", help="no [seer run ...] lines")
    _client_flags(p)

    p = add("put", cmd_put, "send a file or an agent module to nodes",
            "Send a file to the targeted nodes (into their files/ folder), or with --agent an "
            "agent module, which every node loads at once: no restart needed.")
    p.add_argument("file", help="the local file")
    p.add_argument("--as", dest="name", metavar="NAME", help="name on the nodes (default: the file's)")
    p.add_argument("--agent", action="store_true", help="it is an agent module: load it")
    p.add_argument("--mode", default="644", help="permissions on the nodes, octal (default: 644)")
    p.add_argument("--target", "-t", metavar="SPEC", help="nodes (default: all)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="for the outcomes")
    _client_flags(p)

    p = add("get", cmd_get, "bring a file back from nodes",
            "Bring NAME (relative to each node's work folder, e.g. TCPDUMP-cap/capture.pcap) "
            "back from the targeted nodes into INTO/NODE/NAME.")
    p.add_argument("name", help="the file on the nodes")
    p.add_argument("--into", default="results", help="local folder (default: results)")
    p.add_argument("--target", "-t", metavar="SPEC", help="nodes (default: all)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="for the outcomes")
    _client_flags(p)

    p = add("command", cmd_command, "send any command to an agent group")
    p.add_argument("agent", help="agent type")
    p.add_argument("group", help="agent group name")
    p.add_argument("command", help="command name, e.g. START")
    p.add_argument("arguments", nargs="*", metavar="ARG=VALUE")
    _message_flags(p)
    _client_flags(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:
        known = _user_error(e)
        if known is None:
            raise
        code, prefix = known
        print(f"seer {args.subcommand}: {prefix}{e}", file=sys.stderr)
        return code


def _user_error(e: Exception) -> tuple[int, str] | None:
    """(exit code, message prefix) for an error the user can fix; None for a bug.

    The error classes are imported only now: a daemon or controller must not
    carry the client and testbed modules (and netaddr, which they pull in)
    for the whole of its life just to name them here.
    """
    from seer.protocol.certs import CertError
    from seer.client import ControllerUnreachable, RequestRefused, SeerError
    from seer.config import ConfigError
    from seer.testbed.cli import TestbedError
    from seer.testbed.netns import CommandFailed

    if isinstance(e, (UsageError, ConfigError, CertError, TestbedError, CommandFailed)):
        return EXIT_REFUSED, ""
    if isinstance(e, RequestRefused):
        return EXIT_REFUSED, "refused: "
    if isinstance(e, ControllerUnreachable):
        return EXIT_UNREACHABLE, ""
    if isinstance(e, SeerError):
        return EXIT_FAILED, ""
    return None


if __name__ == "__main__":
    sys.exit(main())
