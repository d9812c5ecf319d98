"""Settings: for `seer controller` and `seer daemon`, flags over a TOML file;
for clients, where the controller is when a testbed runs on this machine.

Every setting has a type, a documented default and a help line; the same
table makes the command-line flags, reads the optional TOML file (stdlib
``tomllib``) and writes the operator's guide.  Precedence: flag, then file,
then default.  A missing key takes its default; an unknown key or a value of
the wrong type is a start-up error naming the key, the file and what was
expected -- never a crash half-way through start-up.

A client given no controller talks to the testbed `seer testbed up` started
(:func:`testbed_client`).  That lookup lives here, below both the client
and ``seer.testbed``, so that the client needs nothing of the testbed's
builder and the testbed may use the client without a loop between them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from seer.protocol.messages import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, RETIRE_AFTER

if TYPE_CHECKING:  # an annotation only: scripts that import the client need no argparse
    import argparse


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says what to fix."""


def parse_hostport(text: str, what: str = "address") -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what} {text!r} must be HOST:PORT, e.g. 127.0.0.1:7700")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"{what} {text!r}: port {number} is out of range")
    return host, number


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("an integer")
    if isinstance(value, str):
        value = int(value)
    if not isinstance(value, int):
        raise TypeError("an integer")
    return value


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError("a number")
    result = float(value)
    if not math.isfinite(result):
        raise TypeError("a finite number")
    return result


def _to_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise TypeError("a list of strings")


def _to_table(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):  # from repeated KEY=VALUE flags
        table = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            if not sep or not key:
                raise TypeError("KEY=VALUE pairs")
            table[key] = val
        return table
    raise TypeError("a table of strings")


def _to_hostport(value: Any) -> str:
    parse_hostport(_to_str(value))
    return value


def _to_optional_hostport(value: Any) -> str:
    """HOST:PORT, or empty for "not given" (the daemon then finds its controller)."""
    return _to_hostport(value) if _to_str(value) else ""


def _to_hostport_or_off(value: Any) -> str:
    """HOST:PORT, or "" for a port that is off."""
    if _to_str(value):
        parse_hostport(value)
    return value


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "list": _to_list,
    "table": _to_table,
    "hostport": _to_hostport,
    "hostport?": _to_optional_hostport,
    "hostport_or_off": _to_hostport_or_off,
}


@dataclass(frozen=True)
class Setting:
    key: str
    type: str
    default: Any
    help: str
    minimum: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    def convert(self, value: Any, where: str) -> Any:
        try:
            result = _CONVERT[self.type](value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {self.key}: {e}") from None
        except (TypeError, ValueError) as e:
            expected = str(e) if isinstance(e, TypeError) else f"a valid {self.type}"
            raise ConfigError(f"{where}: {self.key} must be {expected}, got {value!r}") from None
        if self.minimum is not None and result < self.minimum:
            raise ConfigError(f"{where}: {self.key} must be at least {self.minimum}, got {result}")
        return result


CONTROLLER_SETTINGS = [
    Setting("name", "str", "controller", "name of this controller in logs and reports"),
    Setting("listen", "hostport", "127.0.0.1:7700",
            "HOST:PORT of the mutual-TLS listener for daemons and clients"),
    Setting("group", "hostport", "239.255.77.1:7701",
            "multicast GROUP:PORT the experiment's commands are sent to"),
    Setting("interface", "str", "127.0.0.1",
            "address or name of the control interface multicast leaves by (TTL 1)"),
    Setting("certs", "str", "certs", "folder made by `seer certs init`"),
    Setting("state_dir", "str", "state/controller",
            "folder for checkpoints and the send journal"),
    Setting("nodefile", "str", "",
            "file listing the experiment's nodes, one per line, so nodes that never "
            "registered can be named"),
    Setting("required", "list", [], "nodes that clients may wait for (seer nodes --wait)"),
    Setting("ping_interval", "float", 1.0,
            "seconds between PINGs when idle (nodes notice a lost last message)", 0.01),
    Setting("retire_after", "float", RETIRE_AFTER,
            "seconds a sent datagram stays available for repairs", 1.0),
    Setting("checkpoint_interval", "float", 5.0, "seconds between checkpoints", 0.1),
    Setting("update_interval", "float", 1.0, "seconds between status updates to sinks", 0.1),
    Setting("default_timeout", "float", 10.0,
            "seconds a client waits for outcomes unless it says otherwise", 0.1),
    Setting("heartbeat_interval", "float", HEARTBEAT_INTERVAL,
            "seconds of quiet on a node's link before a heartbeat is sent (both ways)", 0.1),
    Setting("heartbeat_timeout", "float", HEARTBEAT_TIMEOUT,
            "seconds of silence after which a node is unreachable (the daemons use the same)",
            0.3),
    Setting("http", "hostport_or_off", "127.0.0.1:0",
            "HOST:PORT of the HTTP port serving /metrics (port 0: any free port; empty: none); "
            "`seer status --json` says where it is"),
    Setting("http_url", "str", "",
            "the URL clients are given for the HTTP port, when they reach it another way "
            "(a relay); default http://HOST:PORT as bound"),
    Setting("stats_interval", "float", 1.0,
            "seconds between aggregates of the nodes' readings (rates, history, sinks)", 0.1),
    Setting("stats_history", "float", 600.0,
            "seconds of aggregates kept in memory for `seer stats` and the dashboard", 1.0),
    Setting("link_names", "table", {},
            "SUBNET=NAME names of the experiment's links and LANs (default: the subnet)"),
    Setting("aggregator_dirs", "list", [], "extra folders of Aggregator modules"),
    Setting("topology", "str", "",
            "JSON file of the experiment's topology for the dashboard (the testbed writes "
            "one; docs/DASHBOARD.md); default: inferred from the nodes' subnets"),
]

DAEMON_SETTINGS = [
    Setting("name", "str", "",
            "this node's name (default: the host name without its domain)"),
    Setting("controller", "hostport?", "",
            "HOST:PORT of the controller (default: found from its PINGs on the group)"),
    Setting("group", "hostport", "239.255.77.1:7701", "multicast GROUP:PORT to join"),
    Setting("interface", "str", "127.0.0.1",
            "address or name of the control interface to join the group on"),
    Setting("certs", "str", "certs", "folder made by `seer certs init`"),
    Setting("agent_dirs", "list", [], "extra folders of agent modules"),
    Setting("isolate", "str", "auto",
            "where agent groups run: auto (SEER's shipped agents in the daemon, every other "
            "agent's groups each in a worker process, unless the class says otherwise with "
            "ISOLATED), all (every group in a worker), none (every group in the daemon)"),
    Setting("attributes", "table", {}, "KEY=VALUE attributes, e.g. role=router"),
    Setting("labels", "list", [], "extra names other nodes may target with has:LABEL"),
    Setting("addresses", "list", [],
            "experiment addresses of this node (default: discovered with `ip addr`, "
            "leaving out loopback and the control interface; none on a loopback control "
            "interface)"),
    Setting("workdir", "str", "", "folder for agent logs and files (default: state/<name>)"),
    Setting("rx_drop", "float", 0.0,
            "fault injection: fraction of received multicast datagrams to drop", 0.0),
    Setting("rx_drop_seed", "int", None,
            "seed for rx_drop, for repeatable runs (default: a fresh random seed at each "
            "start, so that repeated runs sample different loss patterns)"),
    Setting("stats_interval", "float", 1.0,
            "seconds between the pollers' readings and STATS frames (0: no stats)", 0.0),
    Setting("pollers", "list", [],
            "pollers to run (default: every one loaded: interface, qdisc, host, agent, "
            "process and any from poller_dirs or the seer.pollers entry points)"),
    Setting("poller_dirs", "list", [], "extra folders of Poller modules"),
]


def add_flags(parser: argparse.ArgumentParser, settings: list[Setting]) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file of settings (flags win)")
    for s in settings:
        kwargs: dict[str, Any] = {
            "dest": s.key,
            "default": None,
            "help": s.help if s.default in (None, "", [], {}) or "default:" in s.help
            else f"{s.help} (default: {s.default!r})",
        }
        if s.type in ("list", "table"):
            kwargs["action"] = "append"
            kwargs["metavar"] = "KEY=VALUE" if s.type == "table" else "VALUE"
        else:
            kwargs["metavar"] = "HOST:PORT" if "hostport" in s.type else s.type.upper()
        parser.add_argument(s.flag, **kwargs)


def load(settings: list[Setting], path: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    """Resolve every setting: flags, then the TOML file, then defaults."""
    known = {s.key: s for s in settings}
    from_file: dict[str, Any] = {}
    if path:
        import tomllib  # only a service reads TOML; every client imports this module

        try:
            with open(path, "rb") as f:
                from_file = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        unknown = sorted(set(from_file) - set(known))
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
    result = {}
    for key, setting in known.items():
        flag_value = flags.get(key)
        if flag_value is not None:
            if setting.type == "list":
                flag_value = [v for item in flag_value for v in _to_list(item)]
            result[key] = setting.convert(flag_value, f"flag {setting.flag}")
        elif key in from_file:
            result[key] = setting.convert(from_file[key], str(path))
        else:
            result[key] = setting.default
    return result


def read_nodefile(path: str) -> list[str]:
    """Node names from a node list: one per line, '#' comments, blank lines ok."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read node file {path}: {e.strerror}") from None
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.extend(line.split())
    return names


# -- the running testbed a client talks to by default ----------------------------------

#: The file in a testbed's state folder that says how to reach it (written by
#: seer.testbed.state).
TESTBED_STATE_FILE = "testbed.json"


def testbeds_root() -> Path:
    """The folder of every testbed's state folder: $SEER_TESTBED_DIR or /run/seer/testbeds."""
    return Path(os.environ.get("SEER_TESTBED_DIR") or "/run/seer/testbeds")


def read_testbed(name: str) -> dict[str, Any] | None:
    """The testbed's state (testbed.json), or None if it has none or it is unreadable."""
    try:
        return json.loads((testbeds_root() / name / TESTBED_STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def known_testbeds() -> list[str]:
    """Names of testbeds with a state folder."""
    folder = testbeds_root()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / TESTBED_STATE_FILE).exists())


def running_testbeds() -> list[dict[str, Any]]:
    """States of testbeds that finished coming up and are not down."""
    return [s for s in (read_testbed(n) for n in known_testbeds()) if s and s.get("up")]


def testbed_client(name: str | None = None) -> dict[str, str] | None:
    """controller, certs and identity of the named testbed (default:
    $SEER_TESTBED), or of the only running one; None if there is none (or
    several and none was named)."""
    name = name or os.environ.get("SEER_TESTBED")
    if name:
        state = read_testbed(name)
        return state["client"] if state and state.get("up") else None
    up = running_testbeds()
    return up[0]["client"] if len(up) == 1 else None


def markdown_table(settings: list[Setting]) -> str:
    """The settings as the Markdown table in docs/OPERATIONS.md."""
    lines = ["| setting (TOML key) | flag | default | meaning |", "| --- | --- | --- | --- |"]
    for s in settings:
        default = "(none)" if s.default is None or s.default in ("", [], {}) \
            else f"`{s.default!r}`"
        lines.append(f"| `{s.key}` | `{s.flag}` | {default} | {s.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("## seer controller\n")
    print(markdown_table(CONTROLLER_SETTINGS))
    print("\n## seer daemon\n")
    print(markdown_table(DAEMON_SETTINGS))
