"""Build the controller and the node daemon from their resolved settings.

The shape of twisted.names' ``tap.py``: `seer controller` and `seer daemon`
resolve their settings (seer.config: flags over a TOML file over defaults)
and hand them here; what comes back is a service, ready for
``startService``, whose children own its ports and timers.  The reactor is
passed in: this module never imports the global one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.node.daemon import NodeDaemon
from backend.runtime.agentloader import default_registry
from seer.config import parse_hostport, read_nodefile
from seer.protocol.wire import use_orjson

if TYPE_CHECKING:
    from backend.controller import Controller

#: Settings whose names are the constructors' own keywords.
_CONTROLLER_KEYWORDS = ("certs", "listen", "interface", "state_dir", "ping_interval",
                        "retire_after", "checkpoint_interval", "update_interval",
                        "default_timeout", "heartbeat_interval", "heartbeat_timeout")
_DAEMON_KEYWORDS = ("controller", "interface", "certs", "attributes", "labels", "rx_drop",
                    "rx_drop_seed", "isolate")


def make_controller(settings: dict[str, Any], reactor: Any) -> Controller:
    """`seer controller`: the Controller of these settings."""
    use_orjson()
    # Imported here: a daemon's process (one per node) never loads the
    # controller's modules, about 1 MB of every daemon's RSS.
    from backend.controller import Controller

    nodes = read_nodefile(settings["nodefile"]) if settings["nodefile"] else []
    return Controller(
        parse_hostport(settings["group"], "multicast group"), settings["name"],
        nodefile=nodes, required=settings["required"], reactor=reactor,
        **{key: settings[key] for key in _CONTROLLER_KEYWORDS},
        stats={"http": settings["http"], "http_url": settings["http_url"],
               "interval": settings["stats_interval"], "history": settings["stats_history"],
               "link_names": settings["link_names"],
               "aggregator_dirs": settings["aggregator_dirs"]},
        dashboard={"topology_file": settings["topology"]},
    )


def make_daemon(settings: dict[str, Any], reactor: Any) -> NodeDaemon:
    """`seer daemon`: the NodeDaemon of these settings."""
    use_orjson()
    return NodeDaemon(
        settings["name"] or None, reactor=reactor, multicastaddr=settings["group"],
        registry=default_registry([Path(d) for d in settings["agent_dirs"]]),
        addresses=settings["addresses"] or None, workdir=settings["workdir"] or None,
        **{key: settings[key] for key in _DAEMON_KEYWORDS},
        stats={"interval": settings["stats_interval"], "names": settings["pollers"] or None,
               "dirs": settings["poller_dirs"]},
    )
