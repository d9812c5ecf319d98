"""Many node daemons in one process, for simulating large experiments.

    python -m bench.multidaemon --names n1,n2,... --controller HOST:PORT
        --group GROUP:PORT --certs DIR [--interface 127.0.0.1]

Each name is a full NodeDaemon -- its own TLS connection, its own multicast
socket, its own pipeline and agents -- sharing only the reactor and the
loaded agent classes.  A thousand simulated nodes are ten such processes of
a hundred daemons.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.multidaemon", description=__doc__)
    parser.add_argument("--names", required=True, help="comma-separated node names")
    parser.add_argument("--controller", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--certs", required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--workdir", default="state")
    parser.add_argument("--agent-dirs", action="append", default=[])
    parser.add_argument("--rx-drop", type=float, default=0.0)
    parser.add_argument("--isolate", default="auto", choices=("auto", "all", "none"))
    # Stats as `seer daemon` has them (on, every second), unless told otherwise.
    parser.add_argument("--stats-interval", type=float, default=1.0)
    parser.add_argument("--pollers", action="append", default=[])
    parser.add_argument("--poller-dirs", action="append", default=[])
    args = parser.parse_args(argv)

    from twisted.application import service
    from backend.net.reactor import install

    install()  # as seer daemon runs
    from twisted.internet import reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from backend.runtime.agentloader import default_registry
    from backend.node.daemon import NodeDaemon
    from backend.node.pollers import load_pollers
    from seer.protocol.wire import use_orjson

    # A hundred daemons' info lines would drown the log: warnings only.
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])],
        redirectStandardIO=False)
    use_orjson()  # as `seer daemon` does (backend/tap.py)
    registry = default_registry([Path(d) for d in args.agent_dirs])
    parent = service.MultiService()
    # One set of poller classes for every daemon of the process (loaded once).
    stats = {"interval": args.stats_interval, "names": args.pollers or None,
             "plugins": load_pollers(args.poller_dirs)}
    for name in args.names.split(","):
        NodeDaemon(name, reactor=reactor, controller=args.controller, multicastaddr=args.group,
                   interface=args.interface, certs=args.certs, registry=registry,
                   addresses=["127.0.0.1"], workdir=Path(args.workdir) / name,
                   rx_drop=args.rx_drop, isolate=args.isolate,
                   stats=stats).setServiceParent(parent)
    reactor.callWhenRunning(parent.startService)
    reactor.addSystemEventTrigger("before", "shutdown", parent.stopService)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
