"""CommWrapper: how the controller (and its modules) talk to the experiment.

SEER's names are kept.  Every message bound for the experiment is stamped
with the next serial and leaves in one signed multicast datagram, whatever
the number of nodes.  Messages stamped in the same reactor turn share a
datagram (up to the size limit), which is how a burst of commands costs
fewer than one datagram -- and one signature check per node -- each.

Before a datagram is sent its messages are appended to the journal, so a
controller killed at any moment restarts without reusing a serial.  Sent
datagrams stay in the retransmit window for repairs until ``retireSerials``
drops them (two minutes).  ``checkSerial`` records each node's cumulative
acknowledgement in the node table, which is where it lives.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from backend.controller.checkpoint import Journal, JournalError
from backend.net.multicast import MulticastSender
from backend.controller.retransmit import RetransmitWindow
from backend.controller.nodetable import NodeTable
from backend.controller.sinks import Sinks
from backend.controller.statemodel import NodeSet, StateModel
from seer.protocol.targets import ALL, Target, parse_target
from seer.protocol.datagrams import (
    MAX_DATAGRAM,
    KIND_PING,
    SigningKeys,
    batch_payload,
    batch_size,
    encode_batch,
    encode_datagram,
)
from seer.protocol.tags import TagTable
from seer.protocol.wire import dumps

log = Logger()

#: Pings follow the last datagram of a burst after this much quiet (seconds),
#: so a node that lost the burst's last datagram notices within 50 ms -- and,
#: if it lost the first ping too, within 250 ms, 600 ms, 1 s or 1.5 s --
#: instead of waiting for the periodic ping, which the tail pings, being
#: traffic, put off until about 2.5 s.  At 20% loss, missing the datagram and
#: all five pings is 0.2**6: one node in 15,000 bursts.  Five ~330-byte
#: datagrams per burst cost nothing next to that.
TAIL_PINGS = (0.05, 0.25, 0.6, 1.0, 1.5)
#: Seconds between attempts to write the journal after it failed.
JOURNAL_RETRY = 1.0


class MessageTooLarge(ValueError):
    pass


class CommWrapper:
    def __init__(
        self,
        name: str,
        multicastaddr: tuple[str, int],
        controller: Any,
        *,
        nodes: NodeTable,
        sinks: Sinks,
        sender: MulticastSender,
        keys: SigningKeys,
        clock: IReactorTime,
        epoch: int,
        serial: int = 0,
        model: StateModel | None = None,
        window: RetransmitWindow | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.name = name
        self.multicastaddr = multicastaddr
        self.controller = controller
        #: Who is in the experiment: targets resolve against it, and it
        #: holds each node's acknowledged serial.
        self.nodes = nodes
        self.sinks = sinks
        self.sender = sender
        self.keys = keys
        #: Each node's tag key: datagrams are tagged for every node rather
        #: than RSA-signed while they are few enough (seer/protocol/tags.py).
        self.tags = TagTable()
        self.clock = clock
        self.epoch = epoch
        #: Last serial handed out.
        self.serial = serial
        #: Last serial actually sent (journaled and multicast).
        self.sent_serial = serial
        self.model = model if model is not None else StateModel()
        self.window = window if window is not None else RetransmitWindow()
        self.journal = journal
        self.last_sent_at: float | None = None
        self.last_ping_at: float | None = None
        #: HOST:PORT daemons reach the controller's TLS listener at (in PINGs).
        self.advertise: str | None = None
        self.message_datagrams = 0
        self.ping_datagrams = 0
        self.send_errors = 0
        self.journal_errors = 0
        self._batch: list[tuple[int, bytes, Callable[[int], None] | None]] = []
        self._flush_call: IDelayedCall | None = None
        self._tail_ping: IDelayedCall | None = None

    # -- stamping and sending -------------------------------------------------

    def stamp(
        self,
        message: dict[str, Any],
        nodes: NodeSet,
        on_sent: Callable[[int], None] | None = None,
        encoded: bytes | None = None,
    ) -> int:
        """Give ``message`` the next serial and queue it for this turn's datagram.

        ``nodes`` is who it is for (None: every node), for the snapshot
        model; ``on_sent(serial)`` runs once it has been journaled and sent.
        """
        if encoded is None:
            encoded = self.check_size(message)
        self.serial += 1
        self.model.apply(self.serial, message, nodes, self.clock.seconds())
        self._batch.append((self.serial, encoded, on_sent))
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)
        return self.serial

    def check_size(self, message: dict[str, Any]) -> bytes:
        """The encoded message; MessageTooLarge if it cannot fit a datagram."""
        encoded = dumps(message)
        if batch_size([encoded]) > MAX_DATAGRAM:
            raise MessageTooLarge(
                f"message of {len(encoded)} bytes does not fit in one datagram "
                f"(limit {MAX_DATAGRAM - batch_size([])} bytes); send files with PUT"
            )
        return encoded

    def flush(self) -> None:
        """Send every queued message now, as few datagrams as fit."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        batch, self._batch = self._batch, []
        if not batch:
            return
        chunks = []
        empty = batch_size([])
        start, size = 0, empty
        for i, (_, encoded, _) in enumerate(batch):
            if i > start and size + len(encoded) + 1 > MAX_DATAGRAM:
                chunks.append(batch[start:i])
                start, size = i, empty
            size += len(encoded) + 1
        chunks.append(batch[start:])
        for n, chunk in enumerate(chunks):
            if not self._send_messages(chunk):
                # Keep the rest, in order, and try again shortly.
                self._batch = [m for c in chunks[n:] for m in c] + self._batch
                self._flush_call = self.clock.callLater(JOURNAL_RETRY, self.flush)
                break
        self._arm_tail_ping()

    @property
    def held(self) -> int:
        """Messages stamped but not yet sent."""
        return len(self._batch)

    def _send_messages(self, chunk: list[tuple[int, bytes, Callable[[int], None] | None]]) -> bool:
        """Journal, then multicast, one datagram's messages.

        If the journal cannot be written, nothing is sent and False returned:
        the messages wait (their serials unseen by any node) and are tried
        again, so a serial is never sent without being durable.  A failed
        multicast send is only logged: the datagram is journaled and in the
        window, and nodes repair it like any loss.
        """
        first = chunk[0][0]
        last = first + len(chunk) - 1
        payload = batch_payload([m for _, m, _ in chunk])
        now = self.clock.seconds()
        if self.journal is not None:
            try:
                self.journal.append(self.epoch, first, now, payload)
            except JournalError as e:
                self.journal_errors += 1
                log.critical("{error}; holding serials {first}-{last} until it works",
                             error=str(e), first=first, last=last)
                return False
        datagram = encode_batch(self.keys, self.epoch, first, len(chunk), payload, self.tags)
        self.window.add(first, last, datagram, now)
        self.sent_serial = last
        self.last_sent_at = now
        try:
            self.sender.send(datagram)
            self.message_datagrams += 1
        except Exception as e:
            self.send_errors += 1
            log.error("multicast send of serials {first}-{last} failed ({error}); "
                      "nodes will repair it", first=first, last=last, error=str(e))
        for serial, _, on_sent in chunk:
            if on_sent is not None:
                try:
                    on_sent(serial)
                except Exception:
                    log.failure("after sending serial {serial}", serial=serial)
        return True

    def send(self, datagram: bytes) -> None:
        """Send message on the control network as is."""
        self.sender.send(datagram)

    def ping(self) -> None:
        """Multicast a PING carrying the current serial (and, so that daemons
        can find it, where the controller listens)."""
        body: dict[str, Any] = {"t": self.clock.seconds()}
        if self.advertise:
            body["controller"] = self.advertise
        datagram = encode_datagram(self.keys, KIND_PING, self.epoch, self.sent_serial,
                                   body=body, tags=self.tags)
        self.last_sent_at = self.last_ping_at = self.clock.seconds()
        try:
            self.sender.send(datagram)
            self.ping_datagrams += 1
        except Exception as e:
            self.send_errors += 1
            log.error("multicast PING failed: {error}", error=str(e))

    def _arm_tail_ping(self, index: int = 0) -> None:
        delay = TAIL_PINGS[index] - (TAIL_PINGS[index - 1] if index else 0.0)
        if index == 0 and self._tail_ping is not None and self._tail_ping.active():
            self._tail_ping.cancel()
        self._tail_ping = self.clock.callLater(delay, self._fire_tail_ping, index)

    def _fire_tail_ping(self, index: int) -> None:
        self._tail_ping = None
        if index + 1 < len(TAIL_PINGS):
            self._arm_tail_ping(index + 1)
        self.ping()

    def stop(self) -> None:
        """Send what is queued and cancel timers (controller shutdown)."""
        self.flush()
        if self._tail_ping is not None and self._tail_ping.active():
            self._tail_ping.cancel()
        self._tail_ping = None

    # -- SEER's targeted sends ----------------------------------------------------

    def resolve(self, spec: Any) -> tuple[Target, list[str]]:
        """The target ``spec`` and the nodes it names now (TargetError if none)."""
        target = parse_target(spec)
        return target, target.resolve(self.nodes)

    @staticmethod
    def node_set(target: Target, nodes: list[str]) -> NodeSet:
        """Who a message to ``target`` is for, as the snapshot model keeps it:
        None for everyone (nodes that register later too)."""
        return None if target.is_all else frozenset(nodes)

    def _send_to(self, message: dict[str, Any], spec: Any) -> tuple[int, list[str]]:
        target, nodes = self.resolve(spec)
        message = dict(message, target=target.wire(nodes))
        return self.stamp(message, self.node_set(target, nodes)), nodes

    def sendToExperiment(self, msg: dict[str, Any]) -> int:
        """Send to all experiment nodes in one multicast message."""
        return self.stamp(dict(msg, target=ALL), None)

    def sendToNode(self, msg: dict[str, Any], name: str) -> tuple[int, list[str]]:
        """Send to node ``name``, matching with shell wildcards."""
        return self._send_to(msg, name)

    def sendToNodes(self, msg: dict[str, Any], nodelist: Any) -> tuple[int, list[str]]:
        """Send to the nodes matching any name (wildcards allowed) in ``nodelist``."""
        return self._send_to(msg, nodelist)

    def sendToNodeThatHas(self, msg: dict[str, Any], label: str) -> tuple[int, list[str]]:
        """Send to the node that is ``label`` or controls an interface ``label``."""
        return self._send_to(msg, f"has:{label}")

    def sendToSinks(self, msg: dict[str, Any]) -> int:
        """Send a frame to every connected sink; returns how many got it."""
        return self.sinks.send(msg)

    # -- reliability duties -----------------------------------------------------------

    def checkSerial(self, node: str, serial: int) -> int:
        """Record ``node``'s cumulative ack; return how far behind it is."""
        record = self.nodes.acknowledge(node, serial, self.sent_serial)
        return self.sent_serial - record.serial if record is not None else self.sent_serial

    def nodeDown(self, node: str) -> None:
        """A node's connection closed: it is no longer active."""
        self.nodes.down(node, self.clock.seconds())
        log.info("node {node} is down", node=node)

    def retireSerials(self) -> int:
        """Drop datagrams older than two minutes; they are not worth resending."""
        retired = self.window.retire(self.clock.seconds())
        if retired:
            log.debug("retired {count} serials", count=retired)
        return retired
