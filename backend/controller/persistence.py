"""What the controller keeps across restarts: restore at start, checkpoints,
journal rotation.

At start the newest valid checkpoint gives the epoch, the serial, the node
table and the state model; the journal written since then replays every
datagram sent after it, so the serial sequence continues and the datagrams
young enough are back in the retransmit window.  A checkpoint is written
every few seconds when something changed (a serial sent, a node
registered), in a thread, and starts a new journal.  The formats are in
:mod:`backend.controller.checkpoint`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from backend.controller.checkpoint import (
    CheckpointStore,
    Journal,
    JournalError,
    JournalRecord,
    read_journals,
)
from backend.controller.nodetable import NodeTable
from backend.controller.retransmit import RetransmitWindow
from backend.controller.statemodel import StateModel
from backend.runtime.files import BlobStore
from seer.protocol.datagrams import SigningKeys, batch_payload, encode_batch
from seer.protocol.wire import dumps

log = Logger()


@dataclass
class Restored:
    """Where a controller starting now continues from."""

    epoch: int
    serial: int
    model: StateModel
    #: Journal records replayed after the checkpoint, oldest first.
    recent: list[JournalRecord]

    @property
    def replayed(self) -> int:
        return sum(len(r.messages) for r in self.recent)


class Persistence:
    def __init__(self, state_dir: str | Path, nodes: NodeTable, clock: Any,
                 blocking: Callable[..., Deferred], retire_after: float,
                 blobs: BlobStore) -> None:
        self.store = CheckpointStore(state_dir)
        self.nodes = nodes
        self.clock = clock
        self.blocking = blocking
        self.retire_after = retire_after
        self.blobs = blobs
        #: Bumped whenever the node table or the runs' ends change (a
        #: checkpoint is due then even if no serial was sent).
        self.node_changes = 0
        self._seq = 0
        self._running: Deferred | None = None
        self._written: tuple[int, int] | None = None

    # -- start ------------------------------------------------------------------------

    def restore(self) -> Restored:
        """Epoch, serial, model and the journal records replayed after the checkpoint."""
        newest = self.store.newest()
        if newest is None:
            epoch = random.SystemRandom().randrange(1, 2**63)
            log.info("no checkpoint in {dir}: new epoch {epoch}",
                     dir=str(self.store.directory), epoch=epoch)
            return Restored(epoch, 0, StateModel(), [])
        seq, state = newest
        epoch, serial = state["epoch"], state["serial"]
        model = StateModel.from_json(state["model"])
        self.nodes.restore(state["nodes"])
        replayed = []
        events = 0
        for record in read_journals(self.store.directory, seq):
            if record.event is not None:
                # Journal ``seq`` itself was closed when checkpoint ``seq``
                # was taken: its events are in the checkpoint already.
                if record.seq > seq and record.epoch == epoch:
                    self._replay(record, model)
                    events += 1
                continue
            if record.epoch != epoch or record.last_serial <= serial:
                continue
            for offset, message in enumerate(record.messages):
                if record.serial + offset > serial:
                    target = message.get("target")
                    model.apply(record.serial + offset, message,
                                None if target == "*" else frozenset(target or []),
                                record.sent_at)
            serial = record.last_serial
            replayed.append(record)
        log.info("restored checkpoint {seq}: epoch {epoch}, serial {serial}; "
                 "{events} node-table and run events replayed from the journal",
                 seq=seq, epoch=epoch, serial=state["serial"], events=events)
        return Restored(epoch, serial, model, replayed)

    def _replay(self, record: JournalRecord, model: StateModel) -> None:
        """Apply one journaled event (see :meth:`record`) to the node table or model."""
        event = record.event
        if "registered" in event:
            info = event["registered"]
            self.nodes.register_restored(info, record.sent_at, info.get("control_address"))
        elif "catalogue" in event:
            entry = self.nodes.get(event["catalogue"]["name"])
            if entry is not None:
                entry.agents = self.nodes.intern(event["catalogue"]["agents"])
                entry.agent_errors = event["catalogue"]["agent_errors"]
        elif "forgotten" in event:
            self.nodes.forget(event["forgotten"])
        elif "run_ended" in event:
            ended = event["run_ended"]
            model.end_run(ended["node"], ended["agent"], ended["group"], ended["start"],
                          ended["at"], ended["why"])

    def record(self, comm: Any, event: dict[str, Any]) -> None:
        """Journal an event the next checkpoint will hold: a registration
        (``{"registered": INFO}``), a new catalogue, a node forgotten, a run's
        end.  If the journal cannot be written the event is still in memory
        and the next checkpoint keeps it; the log says so."""
        self.node_changes += 1
        try:
            comm.journal.append_event(comm.epoch, comm.sent_serial, self.clock.seconds(), event)
        except JournalError as e:
            log.critical("{error}; a restart before the next checkpoint would lose {what}",
                         error=str(e), what=", ".join(event))

    def first_journal(self) -> Journal:
        """The journal this run starts with (its sequence never used before)."""
        self._seq = self.store.next_seq()
        return Journal(self.store.directory, self._seq)

    def window_from(self, restored: Restored, keys: SigningKeys) -> RetransmitWindow:
        """Replayed datagrams young enough to repair, signed with this run's keys."""
        window = RetransmitWindow(self.retire_after)
        now = self.clock.seconds()
        for record in restored.recent:
            if now - record.sent_at <= self.retire_after:
                payload = batch_payload([dumps(m) for m in record.messages])
                datagram = encode_batch(keys, restored.epoch, record.serial,
                                        len(record.messages), payload)
                window.add(record.serial, record.last_serial, datagram, record.sent_at)
        return window

    # -- checkpoints -------------------------------------------------------------------

    def checkpoint(self, comm: Any, final: bool = False) -> Deferred:
        """Write epoch, serial, node table and state model; rotate the journal."""
        if self._running is not None and not final:
            return succeed(None)
        comm.flush()
        if comm.held:
            # The model already has messages the journal does not: a
            # checkpoint now would not match any serial.  Wait.
            return succeed(None)
        # Only serials and registrations need persisting; acks come back anew.
        fingerprint = (comm.sent_serial, self.node_changes)
        if fingerprint == self._written and not final:
            return succeed(None)
        self._written = fingerprint
        state = {
            "epoch": comm.epoch,
            "serial": comm.sent_serial,
            "nodes": self.nodes.to_json(),
            "model": comm.model.to_json(),
        }
        seq = self._seq
        self._seq += 1
        old_journal = comm.journal
        if not final:
            comm.journal = Journal(self.store.directory, self._seq)
        now = self.clock.seconds()
        referenced = comm.model.referenced_blobs()

        def write() -> None:
            self.store.write(seq, state, now)
            self.store.prune()
            self.blobs.prune(referenced, older_than=now - self.retire_after)

        def done(result: Any) -> Any:
            self._running = None
            if not final and old_journal is not None:
                old_journal.close()
            if isinstance(result, Failure):
                log.failure("checkpoint {seq} failed", result, seq=seq)
            return None

        previous = self._running or succeed(None)
        d = previous.addBoth(lambda _: self.blocking(write)).addBoth(done)
        self._running = d if not d.called else None
        return d
