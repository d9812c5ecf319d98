"""The worker protocol: how a node daemon and one of its agent workers talk.

Internal to a node (the controller never sees it), so it may change with
any release; both ends are always the same SEER, the worker being started
by its daemon from the daemon's own code.

Frames are SEER's stream frames (:mod:`seer.protocol.wire`: length,
version, JSON header with a ``type``, no blob), over the worker's stdin
(daemon to worker) and stdout (worker to daemon).  The worker moves its
own stdout to its stderr before anything else runs, so what an agent
prints goes to the daemon's log, never into the protocol; the daemon logs
the worker's stderr line by line.

daemon -> worker::

    SETUP    {node, agent, group, source, node_info, workdir,     first and once
              process_tag, counters_interval}
    RUN      {id, serial, message}      one SET or COMMAND; answered by DONE
    RESTORE  {id, entry, current}       a snapshot's entry for the group (the
                                        daemon's own after a restart, too);
                                        answered by DONE
    CANCEL   {id}                       the daemon gave up waiting for RUN id
                                        (its handler timeout)
    REPLY    {id, ok, value | error}    the answer to ASK id
    STOP     {}                         stop the agent (its ``stop``, then its
                                        processes) and exit 0

worker -> daemon::

    HELLO    {pid} | {pid, error}       after SETUP: the agent class is loaded
                                        (or why not: the worker then exits)
    DONE     {id, status, error, result}          for RUN
    DONE     {id, problem, state, vars_applied}   for RESTORE
    EVENT    {event, data}              the agent's report(): into a REPORT
    STREAM   {name, data}               the agent's stream(): a STREAM frame
    RUN_ENDED {why}                     the agent's runFinished()
    ASK      {id, what}                 a request of the agent's context;
                                        ``what`` is "node_table"
    STATE    {counters, clients, pids}  the agent's counters, its traffic
                                        controllers' stats and its processes,
                                        each second while they change (the
                                        node's pollers read them)

A worker that sends anything else, or bytes that are not frames, is killed
and restarted like one that crashed.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

from twisted.internet.defer import Deferred

#: ``python -m WORKER_MODULE LABEL`` starts a worker.
WORKER_MODULE = "backend.runtime.worker"

# daemon -> worker
SETUP = "SETUP"
RUN = "RUN"
RESTORE = "RESTORE"
CANCEL = "CANCEL"
REPLY = "REPLY"
STOP = "STOP"
# worker -> daemon
HELLO = "HELLO"
DONE = "DONE"
EVENT = "EVENT"
STREAM = "STREAM"
RUN_ENDED = "RUN_ENDED"
ASK = "ASK"
STATE = "STATE"

#: Seconds between STATE frames (only when something changed).
STATE_INTERVAL = 1.0

#: What a worker may ASK of its daemon.
ASKABLE = ("node_table",)

#: A worker's exit code when the agent class could not be loaded.
EXIT_UNLOADABLE = 3
#: ... when its daemon went away and it could not stop cleanly in time.
EXIT_ORPHANED = 70


class Requests:
    """Requests waiting for their answer, by id: RUN and RESTORE on the
    daemon's side, ASK on the worker's."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, Deferred] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def new(self, on_cancel: Callable[[int], None] | None = None) -> tuple[int, Deferred]:
        """A new id and the Deferred its answer fires; cancelling it forgets the id
        (and tells ``on_cancel``)."""
        request_id = next(self._ids)

        def cancelled(_: Deferred) -> None:
            self._waiting.pop(request_id, None)
            if on_cancel is not None:
                on_cancel(request_id)

        d = Deferred(cancelled)
        self._waiting[request_id] = d
        return request_id, d

    def answer(self, request_id: Any, value: Any) -> bool:
        """Fire the request's Deferred; False if no such request waits."""
        d = self._waiting.pop(request_id, None) if isinstance(request_id, int) else None
        if d is None:
            return False
        d.callback(value)
        return True

    def fail(self, request_id: Any, error: BaseException) -> bool:
        """Fail the request's Deferred; False if no such request waits."""
        d = self._waiting.pop(request_id, None) if isinstance(request_id, int) else None
        if d is None:
            return False
        d.errback(error)
        return True

    def fail_all(self, error: BaseException) -> None:
        waiting, self._waiting = self._waiting, {}
        for d in waiting.values():
            d.errback(error)
