"""The daemon's pollers as one child service, and the STATS frame they fill.

Every poller of the node starts at the same random part of its interval
(the node's phase: nodes started together do not read in step, while one
node's pollers read together), so the readings of one interval leave in
one STATS frame: as soon as every poller has answered (the netlink answer
comes a moment after the tick), or FLUSH_DELAY after the first reading if
one has not.  Sending at once rather than after a fixed delay saves each
daemon one reactor wake-up per interval (on a host with a hundred daemons,
a hundred a second).  The frame carries the node's clock, each reading's
own time and every poller's counters (readings, no_response, errors, CPU).
While the controller is unreachable readings are not kept: the counters
they carry are cumulative, so the next frame after the reconnection
carries everything but the resolution in between.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Protocol

from twisted.application import service
from twisted.logger import Logger

from backend.node.pollers.base import Poller, Reading
from backend.node.pollers.shipped import SHIPPED
from backend.plugins import PluginSet

log = Logger()

ENTRY_POINT_GROUP = "seer.pollers"
#: Seconds between the first reading of an interval and its frame.
FLUSH_DELAY = 0.05


class NodeView(Protocol):
    """What pollers may read of their daemon."""

    name: str

    def interfaces(self) -> list[str]: ...

    def groups(self) -> dict[tuple[str, str], Any]: ...

    def run_state(self, key: tuple[str, str]) -> str | None: ...

    def group_pids(self, key: tuple[str, str]) -> list[int]: ...


class DaemonView:
    """A NodeDaemon seen by its pollers: only what they read."""

    def __init__(self, daemon: Any) -> None:
        self._daemon = daemon
        self.name = daemon.name

    def interfaces(self) -> list[str]:
        return [i.get("name") for i in self._daemon.interfaces if i.get("name")]

    def groups(self) -> dict[tuple[str, str], Any]:
        # Every group, an isolated one as its worker's mirror (counters,
        # client_stats, context.processes): the Dispatcher says which.
        return self._daemon.dispatcher.groups()

    def run_state(self, key: tuple[str, str]) -> str | None:
        return self._daemon.dispatcher.run_state.get(key)

    def group_pids(self, key: tuple[str, str]) -> list[int]:
        agent = self.groups().get(key)
        manager = getattr(getattr(agent, "context", None), "processes", None)
        return sorted(manager.running) if manager is not None else []


def load_pollers(dirs: list[str] = ()) -> PluginSet[Poller]:
    """Shipped pollers, then the ``seer.pollers`` entry points, then folders (later wins)."""
    plugins: PluginSet[Poller] = PluginSet(Poller, "poller")
    for cls in SHIPPED:
        plugins.add(cls, "shipped")
    plugins.load_entry_points(ENTRY_POINT_GROUP)
    for directory in dirs:
        plugins.load_directory(directory)
    return plugins


class NodePollers(service.Service):
    """Runs the node's pollers and sends their readings as STATS frames."""

    def __init__(self, view: NodeView, clock: Any, send: Callable[[dict[str, Any]], bool], *,
                 interval: float = 1.0, names: list[str] | None = None,
                 dirs: list[str] = (), rng: random.Random | None = None,
                 plugins: PluginSet[Poller] | None = None) -> None:
        self.setName("pollers")
        self.view = view
        self.clock = clock
        self._send = send
        self.interval = interval
        self.rng = rng or random.Random()
        self.plugins = plugins or load_pollers(list(dirs))
        unknown = sorted(set(names or []) - set(self.plugins.classes))
        if unknown:
            from seer.config import ConfigError  # a setting's mistake: `seer daemon` says so

            raise ConfigError(f"no poller called {', '.join(unknown)} (there are: "
                             f"{', '.join(sorted(self.plugins.classes))})")
        wanted = names or sorted(self.plugins.classes)
        self.pollers: list[Poller] = []
        for name in wanted:
            cls = self.plugins.classes[name]
            # The daemon's interval, or the poller's own if that is longer (a
            # poller whose reading is dear asks for less).
            poller = cls(view, clock, interval=max(interval, cls.INTERVAL), rng=self.rng)
            poller.on_reading = self._reading
            self.pollers.append(poller)
        self._pending: dict[str, dict[str, Any]] = {}
        self._flush_call: Any = None
        self._complete_check: Any = None
        self.seq = 0
        self.frames = 0
        self.bytes_sent = 0
        self.unsent = 0
        #: CPU seconds spent building and sending frames.
        self.cpu_seconds = 0.0

    def startService(self) -> None:
        super().startService()
        if self.interval <= 0:
            return
        phase = self.rng.uniform(0, self.interval)
        for poller in self.pollers:
            poller.start(phase % poller.interval)

    def stopService(self) -> None:
        super().stopService()
        for poller in self.pollers:
            poller.stop()
            poller.close()
        self._cancel_flush()

    def _cancel_flush(self) -> None:
        for call in (self._flush_call, self._complete_check):
            if call is not None and call.active():
                call.cancel()
        self._flush_call = self._complete_check = None

    def _reading(self, poller: Poller, rcv_time: float, reading: Reading) -> None:
        self._pending[poller.NAME] = {"poller": poller.NAME, "t": round(rcv_time, 3),
                                      "series": reading}
        # Checked in the next reactor turn, not here: the tick that brought this
        # reading may be about to run the node's other pollers.
        if self._complete_check is None:
            self._complete_check = self.clock.callLater(0, self._flush_if_complete)

    def _flush_if_complete(self) -> None:
        """Send the frame now if no poller still owes this interval's reading
        (none is waiting for an answer, none is due within FLUSH_DELAY);
        otherwise at FLUSH_DELAY at the latest.  That timer is set only when
        needed: a cancelled one would still wake the reactor when it was due."""
        self._complete_check = None
        due = self.clock.seconds() + FLUSH_DELAY
        if not self._pending:
            return
        if not any(p.reply_pending or p.next_reading() <= due
                   for p in self.pollers if p.running()):
            self.flush()
        elif self._flush_call is None:
            self._flush_call = self.clock.callLater(FLUSH_DELAY, self.flush)

    def frame(self) -> dict[str, Any]:
        """The STATS frame of what came since the last one."""
        self.seq += 1
        readings, self._pending = list(self._pending.values()), {}
        return {"type": "STATS", "time": round(self.clock.seconds(), 3), "seq": self.seq,
                "interval": self.interval, "readings": readings,
                "pollers": {p.NAME: p.status() for p in self.pollers},
                "cpu_seconds_total": round(self.cpu_seconds
                                           + sum(p.cpu_seconds for p in self.pollers), 6)}

    def flush(self) -> None:
        self._cancel_flush()
        started = time.thread_time()
        frame = self.frame()
        if self._send(frame):
            self.frames += 1
        else:
            self.unsent += 1
        self.cpu_seconds += time.thread_time() - started
