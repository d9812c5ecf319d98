"""The reactor SEER's processes run on: epoll, without a log context per event.

Twisted's epoll reactor wraps every read and write it dispatches in
``log.callWithLogger``, which sets up a legacy logging context (the
"system" prefix of old-style log.msg lines) -- a cost paid on every
datagram a daemon receives and every report a controller reads, larger
than some of the work itself.  SEER logs with twisted.logger, whose events
carry their own namespace, so this reactor dispatches directly.  The
entry points install it (seer/cli/services.py, bench.multidaemon) before
anything imports the global reactor; library code never does.
"""

from __future__ import annotations

import errno

from twisted.internet.epollreactor import EPollReactor


class LeanEPollReactor(EPollReactor):
    def doPoll(self, timeout: float | None) -> None:
        """Poll for events and dispatch them, each straight to its selectable."""
        if timeout is None:
            timeout = -1  # wait until something happens
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        dispatch = self._doReadOrWrite
        selectables = self._selectables
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is not None:
                dispatch(selectable, fd, event)

    doIteration = doPoll


def install() -> bool:
    """Make this the global reactor; False if a reactor was installed already
    (then that one runs, as it would have)."""
    import sys

    if "twisted.internet.reactor" in sys.modules:
        return False
    from twisted.internet.main import installReactor

    installReactor(LeanEPollReactor())
    return True
