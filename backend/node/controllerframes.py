"""What the controller sends a daemon over its link, and what it does with it.

WELCOME registers the node (keys, epoch, serial, heartbeat; a snapshot when
it cannot catch up by repairs, or must start afresh); REPAIR brings back a
datagram it missed; SNAPSHOT brings it up to date when repairs cannot;
REFUSED says the controller will not register it (and whether retrying can
help); TAIL asks for the end of its agent logs (the dashboard's node panel);
frames a sink receives go to its listeners.  Applying a snapshot
fetches its files first, then brings each agent group to its variables and
run state -- a finished run is never resumed -- while later messages wait.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from backend.net.heartbeat import Heartbeat
from backend.net.session import FrameSession
from backend.node import logtail
from backend.node.serializer import Serializer
from seer.protocol.datagrams import VerifyingKeys
from seer.protocol.tags import NodeTag
from seer.protocol.wire import Frame, WireError

log = Logger()

#: Refusals that retrying cannot help, in a row, before the daemon gives up.
REFUSALS_BEFORE_GIVING_UP = 3
#: Frames the controller forwards to a node that is a sink.
SINK_FRAMES = ("REPORT", "STREAM", "STATUS")


def _heartbeat_of(welcome: Frame) -> Heartbeat | None:
    """The heartbeat interval and timeout a WELCOME gives, if it gives usable ones."""
    given = welcome.get("heartbeat")
    try:
        heartbeat = Heartbeat(float(given["interval"]), float(given["timeout"]))
    except (TypeError, KeyError, ValueError):
        return None
    return heartbeat if 0 < heartbeat.interval < heartbeat.timeout else None


class ControllerFrames:
    """The daemon's handlers for the controller's frames (``self.d`` is the daemon)."""

    def __init__(self, daemon: Any) -> None:
        self.d = daemon
        #: Refusals that retrying cannot help, since the last WELCOME.
        self.refusals = 0

    def on_frame(self, session: FrameSession, frame: Frame) -> None:
        handler = {
            "WELCOME": self._on_welcome,
            "REPAIR": self._on_repair,
            "REFUSED": self._on_refused,
            "REPORTED": lambda session, frame: self.d.reporter.confirmed(frame.get("seqs")),
            "SNAPSHOT": self._on_snapshot,
            "ERROR": self._on_error,
            "TAIL": self._on_tail,
        }.get(frame.type)
        if handler is not None:
            handler(session, frame)
        elif frame.type in SINK_FRAMES:
            for listener in self.d.sink_listeners:
                listener(frame)
        else:
            self.d.counters["unknown_frames"] += 1

    def _on_welcome(self, session: FrameSession, frame: Frame) -> None:
        try:
            keys = VerifyingKeys.from_json(frame.get("keys") or {}).with_tag(
                NodeTag.from_welcome(frame.get("tag")))
            epoch, serial = int(frame.get("epoch")), int(frame.get("serial"))
        except (WireError, TypeError, ValueError) as e:
            log.error("unusable WELCOME from the controller ({error}); reconnecting",
                      error=str(e))
            session.close()
            return
        reset = bool(frame.get("reset")) or epoch != self.d.epoch
        if reset:
            if self.d.epoch and epoch != self.d.epoch:
                log.info("controller epoch changed from {old} to {new}: starting afresh "
                         "at serial {serial}", old=self.d.epoch, new=epoch, serial=serial)
                self.d.scheduler.cancel()
            self.d.epoch = epoch
            self.d.serializer = Serializer(next_serial=serial + 1)
        else:
            self.d.serializer.observe(serial)
        self.d.keys = keys
        self.d.link.welcomed(session, _heartbeat_of(frame))
        self.d.open_report_channel(frame.get("report"))
        self.refusals = 0
        if not self.d.ready.called:
            self.d.ready.callback(self.d)
        self.d.ping_interval = float(frame.get("ping_interval") or 1.0)
        if frame.get("snapshot") is not None:
            self.apply_snapshot(serial, frame.get("snapshot"), force=reset)
        self.d.accept_early()
        log.info("registered with controller {name}: epoch {epoch}, serial {serial}, "
                 "delivered up to {mine}", name=frame.get("controller", "?"), epoch=epoch,
                 serial=serial, mine=self.d.serializer.delivered_upto)
        self.d.reporter.schedule(urgent=True)
        self.d.request_repairs()

    def _on_repair(self, session: FrameSession, frame: Frame) -> None:
        self.d.counters["repairs_received"] += 1
        self.d.accept_datagram(frame.blob, by_tls=True)

    def _on_snapshot(self, session: FrameSession, frame: Frame) -> None:
        if frame.get("epoch") != self.d.epoch or not isinstance(frame.get("serial"), int):
            self.d.counters["stale_snapshots"] += 1
            return
        self.apply_snapshot(frame.get("serial"), frame.get("snapshot") or {}, force=False)

    def _on_refused(self, session: FrameSession, frame: Frame) -> None:
        """The controller will not register this node (the seed's negative
        register-ack).  If retrying cannot help, give up after a few tries."""
        why = frame.get("error") or "no reason given"
        self.d.counters["refused"] += 1
        if frame.get("retry"):
            log.warn("the controller refused to register {node} for now: {why}",
                     node=self.d.name, why=why)
            return
        self.refusals += 1
        log.error("the controller refused to register {node}: {why} ({count} of "
                  "{limit})", node=self.d.name, why=why, count=self.refusals,
                  limit=REFUSALS_BEFORE_GIVING_UP)
        if self.refusals >= REFUSALS_BEFORE_GIVING_UP and not self.d.ready.called:
            self.d.ready.errback(RuntimeError(
                f"the controller refused to register {self.d.name}: {why}"))

    def _on_error(self, session: FrameSession, frame: Frame) -> None:
        log.warn("controller says: {error}", error=frame.get("error"))

    def _on_tail(self, session: FrameSession, frame: Frame) -> None:
        """The end of each agent group's logs, read in a thread (bounded: logtail)."""
        lines, size = logtail.limits(frame.header)
        request_id = frame.get("id")

        def answer(logs: list) -> None:
            self.d.send({"type": "TAIL", "id": request_id, "logs": logs})

        def failed(failure: Any) -> None:
            self.d.send({"type": "TAIL", "id": request_id, "logs": [],
                         "error": f"cannot read the logs: {failure.getErrorMessage()}"})

        self.d.files.blocking(logtail.read_tails, self.d.workdir, lines, size).addCallbacks(
            answer, failed)

    def apply_snapshot(self, serial: int, snapshot: dict[str, Any], force: bool) -> None:
        if not force and serial <= self.d.serializer.delivered_upto:
            self.d.counters["stale_snapshots"] += 1
            return
        self.d.counters["snapshots_applied"] += 1
        # Files first (a group may need an agent module PUT earlier), then the
        # groups; later messages wait until both are done.
        done = self.d.files.sync(snapshot.get("files") or []).addCallback(
            lambda problems: self.d.dispatcher.apply_snapshot(snapshot.get("groups") or [])
            .addCallback(lambda more: problems + more))
        self.d.dispatcher.exclusively(done)
        queued = {s for _, s in self.d.scheduler.pending()}
        # Serials this node already delivered were already scheduled (and
        # may have run since the controller made the snapshot): not again.
        floor = 0 if force else self.d.serializer.delivered_upto
        for later_serial, message in snapshot.get("scheduled") or []:
            if floor < later_serial <= serial and later_serial not in queued:
                self.d.scheduler.submit(later_serial, message)
        for delivered in self.d.serializer.skip_to(serial):
            self.d.scheduler.submit(*delivered)
        log.info("applied a snapshot at serial {serial} ({groups} agent groups)",
                 serial=serial, groups=len(snapshot.get("groups") or []))

        def reported(problems: list[str]) -> None:
            for problem in problems:
                log.warn("{problem}", problem=problem)
                self.d.reporter.event("seer", "daemon", "snapshot_problem", {"problem": problem})
            self.d.reporter.snapshot_applied(serial)

        done.addCallback(reported)
