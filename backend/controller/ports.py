"""The controller's ports and timers as child services.

Each child owns one thing it opens in ``startService`` and closes in
``stopService``: the TLS listener, the multicast sender's socket, the Unix
socket EXECUTE'd scripts talk back on, and every periodic duty (a
LoopingCall on the injected clock).  The Controller is their MultiService,
so the order of start and stop is the order they were added.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from twisted.application import service
from twisted.internet import task
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger

log = Logger()


class ListeningPort(service.Service):
    """A listening port: ``listen()`` in startService, stopListening in stopService.

    ``listen`` returns the port or a Deferred of it (an endpoint's listen);
    ``ready`` fires with the port once it listens, or fails if it cannot.
    """

    def __init__(self, name: str, listen: Callable[[], Any]) -> None:
        self.setName(name)
        self._listen = listen
        self.port: Any = None
        self.ready: Deferred = Deferred()

    def startService(self) -> None:
        super().startService()
        d = maybeDeferred(self._listen)

        def listening(port: Any) -> Any:
            self.port = port
            return port

        d.addCallback(listening).chainDeferred(self.ready)

    def stopService(self) -> Deferred:
        super().stopService()
        if self.port is None:
            return succeed(None)
        port, self.port = self.port, None
        return maybeDeferred(port.stopListening)


class LocalSocketFolder(service.MultiService):
    """A private folder (0700) for the controller's Unix socket, removed at stop.

    The port listening in it is its child: the folder goes only once the
    port has stopped (and unlinked its socket), not while it still might.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setName("socket-folder")
        self.path = Path(tempfile.mkdtemp(prefix="seer-controller-"))

    def stopService(self) -> Deferred:
        stopped = super().stopService()
        return stopped.addBoth(self._remove)

    def _remove(self, result: Any) -> Any:
        shutil.rmtree(self.path, ignore_errors=True)
        return result


class Duty(service.Service):
    """A periodic duty on the injected clock.

    An error is logged and the next run still comes (a bare LoopingCall
    whose function raises stops for good).
    """

    def __init__(self, name: str, interval: float, duty: Callable[[], Any], clock: Any) -> None:
        self.setName(name)
        self.interval = interval
        self.duty = duty
        self._loop = task.LoopingCall(self._guarded)
        self._loop.clock = clock

    def _guarded(self) -> Deferred:
        return maybeDeferred(self.duty).addErrback(
            lambda f: log.failure("periodic {duty} failed", f, duty=self.name))

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
