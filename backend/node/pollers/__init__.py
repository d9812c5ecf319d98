"""Pollers: the node's readings (interfaces, qdiscs, host, agent groups,
their processes), taken every interval and sent to the controller in one
STATS frame per interval.

* :mod:`.base` -- the Poller base class (Faucet Gauge's shape);
* :mod:`.shipped` -- the pollers every daemon runs;
* :mod:`.collector` -- the daemon's child service that runs them and
  sends the frames; third-party pollers from folders and the
  ``seer.pollers`` entry points;
* :mod:`.procfs`, :mod:`.netlink` -- reading /proc and rtnetlink.

docs/STATS.md says how to write a poller.
"""

from backend.node.pollers.base import Poller, Reading, Series
from backend.node.pollers.collector import DaemonView, NodePollers, NodeView, load_pollers

__all__ = ["DaemonView", "NodePollers", "NodeView", "Poller", "Reading", "Series",
           "load_pollers"]
