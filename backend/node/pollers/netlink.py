"""Qdisc and link dumps over rtnetlink: the requests and their parsing, and a
non-blocking socket for the reactor.

Why not pyroute2 here: importing it costs the daemon about 22 MB of RSS
(measured: 10 -> 32 MB for a bare interpreter), and the daemon's whole
budget is 50 MB; the two dumps SEER needs are a few structs.  Why not `tc
-s qdisc`: a process a second per node is far dearer than one netlink
round trip (measured in docs/STATS.md).  pyroute2 stays the oracle: the
tests compare this parser with it on the testbed's real qdiscs.

The layouts (linux/netlink.h, rtnetlink.h, pkt_sched.h, gen_stats.h)::

    nlmsghdr  len u32, type u16, flags u16, seq u32, pid u32     (16 bytes)
    tcmsg     family u8, pad u8, pad u16, ifindex i32, handle u32,
              parent u32, info u32                              (20 bytes)
    ifinfomsg family u8, pad u8, type u16, index i32, flags u32, change u32
    rtattr    len u16, type u16, payload, padded to 4 bytes

    TCA_KIND (1) string; TCA_OPTIONS (2) nested, per kind; TCA_STATS2 (7)
    nested: TCA_STATS_BASIC (1) {bytes u64, packets u32},
    TCA_STATS_QUEUE (3) {qlen, backlog, drops, requeues, overlimits: u32},
    TCA_STATS_PKT64 (8) packets u64.  tbf's options: TCA_TBF_PARMS (1)
    {rate: tc_ratespec (12 bytes, rate u32 bytes/s at offset 8), ...},
    TCA_TBF_RATE64 (4) u64 bytes/s.  IFLA_IFNAME (3) string.

Numbers are in the host's byte order (netlink is local).
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

log = Logger()

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWQDISC, RTM_GETQDISC = 36, 38
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLA_TYPE_MASK = 0x3FFF

_NLMSGHDR = struct.Struct("=IHHII")
_TCMSG = struct.Struct("=BBHiIII")
_IFINFOMSG = struct.Struct("=BBHiII")
_RTATTR = struct.Struct("=HH")

TCA_KIND, TCA_OPTIONS, TCA_STATS, TCA_STATS2 = 1, 2, 3, 7
TCA_STATS_BASIC, TCA_STATS_QUEUE, TCA_STATS_PKT64 = 1, 3, 8
TCA_TBF_PARMS, TCA_TBF_RATE64 = 1, 4
IFLA_IFNAME = 3
TC_H_ROOT = 0xFFFFFFFF


def dump_request(kind: int, seq: int) -> bytes:
    """A dump request for every qdisc (RTM_GETQDISC) or link (RTM_GETLINK)."""
    body = _TCMSG.pack(0, 0, 0, 0, 0, 0, 0) if kind == RTM_GETQDISC \
        else _IFINFOMSG.pack(0, 0, 0, 0, 0, 0)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP,
                          seq, 0) + body


def attributes(data: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """{type: payload} of the rtattrs in ``data[offset:end]``."""
    end = len(data) if end is None else end
    out = {}
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > end:
            break
        out[kind & NLA_TYPE_MASK] = data[offset + _RTATTR.size: offset + length]
        offset += (length + 3) & ~3
    return out


def messages(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, seq, payload) of every netlink message in one datagram."""
    out = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            break
        out.append((kind, seq, data[offset + _NLMSGHDR.size: offset + length]))
        offset += (length + 3) & ~3
    return out


def _cstring(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


def _handle(value: int) -> str:
    if value == TC_H_ROOT:
        return "root"
    return f"{value >> 16:x}:{value & 0xFFFF:x}" if value & 0xFFFF else f"{value >> 16:x}:"


def parse_qdisc(payload: bytes) -> dict[str, Any] | None:
    """One RTM_NEWQDISC message: ifindex, kind, handle, parent and its counters."""
    if len(payload) < _TCMSG.size:
        return None
    _family, _, _, ifindex, handle, parent, _info = _TCMSG.unpack_from(payload)
    attrs = attributes(payload, _TCMSG.size)
    qdisc: dict[str, Any] = {"ifindex": ifindex, "kind": _cstring(attrs.get(TCA_KIND, b"")),
                             "handle": _handle(handle), "parent": _handle(parent)}
    values = {"sent_bytes_total": 0, "sent_packets_total": 0, "drops_total": 0,
              "overlimits_total": 0, "requeues_total": 0, "backlog_bytes": 0,
              "backlog_packets": 0}
    stats2 = attrs.get(TCA_STATS2)
    if stats2 is not None:
        nested = attributes(stats2)
        basic = nested.get(TCA_STATS_BASIC)
        if basic is not None and len(basic) >= 12:
            values["sent_bytes_total"], values["sent_packets_total"] = \
                struct.unpack_from("=QI", basic)
        pkt64 = nested.get(TCA_STATS_PKT64)
        if pkt64 is not None and len(pkt64) >= 8:
            values["sent_packets_total"] = struct.unpack_from("=Q", pkt64)[0]
        queue = nested.get(TCA_STATS_QUEUE)
        if queue is not None and len(queue) >= 20:
            qlen, backlog, drops, requeues, overlimits = struct.unpack_from("=5I", queue)
            values.update(backlog_packets=qlen, backlog_bytes=backlog, drops_total=drops,
                          requeues_total=requeues, overlimits_total=overlimits)
    elif TCA_STATS in attrs and len(attrs[TCA_STATS]) >= 36:
        # The old struct tc_stats: bytes u64, packets, drops, overlimits, bps, pps, qlen, backlog.
        b, p, d, o, _bps, _pps, qlen, backlog = struct.unpack_from("=QIIIIIII", attrs[TCA_STATS])
        values.update(sent_bytes_total=b, sent_packets_total=p, drops_total=d,
                      overlimits_total=o, backlog_packets=qlen, backlog_bytes=backlog)
    if qdisc["kind"] == "tbf" and TCA_OPTIONS in attrs:
        options = attributes(attrs[TCA_OPTIONS])
        rate = 0
        if TCA_TBF_RATE64 in options and len(options[TCA_TBF_RATE64]) >= 8:
            rate = struct.unpack_from("=Q", options[TCA_TBF_RATE64])[0]
        elif TCA_TBF_PARMS in options and len(options[TCA_TBF_PARMS]) >= 12:
            rate = struct.unpack_from("=I", options[TCA_TBF_PARMS], 8)[0]
        if rate:
            values["rate_limit_bytes_per_second"] = rate
    qdisc["values"] = values
    return qdisc


def parse_link_name(payload: bytes) -> tuple[int, str] | None:
    """(ifindex, name) of one RTM_NEWLINK message."""
    if len(payload) < _IFINFOMSG.size:
        return None
    index = _IFINFOMSG.unpack_from(payload)[3]
    name = attributes(payload, _IFINFOMSG.size).get(IFLA_IFNAME)
    return (index, _cstring(name)) if name is not None else None


class NetlinkError(OSError):
    """The kernel answered a dump with an error."""


class Dump:
    """Collects one dump's answers until NLMSG_DONE."""

    def __init__(self, kind: int, seq: int) -> None:
        self.kind = kind
        self.seq = seq
        self.items: list[Any] = []
        self.done = False
        self.error: int | None = None

    def feed(self, data: bytes) -> None:
        for kind, seq, payload in messages(data):
            if seq != self.seq:
                continue  # an answer to an earlier, abandoned request
            if kind == NLMSG_DONE:
                self.done = True
            elif kind == NLMSG_ERROR:
                code = struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else -1
                if code:
                    self.error, self.done = -code, True
            elif kind == RTM_NEWQDISC and self.kind == RTM_GETQDISC:
                item = parse_qdisc(payload)
                if item is not None:
                    self.items.append(item)
            elif kind == RTM_NEWLINK and self.kind == RTM_GETLINK:
                item = parse_link_name(payload)
                if item is not None:
                    self.items.append(item)


def open_socket() -> socket.socket:
    """A non-blocking rtnetlink socket, in the network namespace of the caller."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                         | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    sock.bind((0, 0))
    return sock


def dump_blocking(sock: socket.socket, kind: int, seq: int, timeout: float = 2.0) -> list[Any]:
    """One dump, waiting for it: for programs without a reactor (the testbed's
    link poller).  The socket may be non-blocking."""
    import select

    sock.send(dump_request(kind, seq))
    dump = Dump(kind, seq)
    while not dump.done:
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            raise TimeoutError("no netlink answer")
        try:
            dump.feed(sock.recv(1 << 16))
        except BlockingIOError:
            continue
    if dump.error:
        raise NetlinkError(dump.error, f"netlink dump: {errno.errorcode.get(dump.error, '?')}")
    return dump.items


class NetlinkReader:
    """One outstanding dump at a time on a non-blocking socket the reactor watches.

    ``dump(kind)`` sends the request and reads what is there at once (the
    kernel answers a small dump within the send); anything left comes when
    the socket is readable.  Nothing blocks the reactor.
    """

    def __init__(self, reactor: Any, sock: socket.socket | None = None,
                 cost: Callable[[float], None] = lambda seconds: None) -> None:
        self.reactor = reactor
        self.sock = sock or open_socket()
        self._seq = 0
        self._dump: Dump | None = None
        self._deferred: Deferred | None = None
        self._reading = False

    # IReadDescriptor
    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "netlink"

    def connectionLost(self, reason: Any) -> None:
        self._finish()

    def dump(self, kind: int) -> Deferred:
        """Fires with the parsed items of one dump (qdiscs or (index, name) links)."""
        if self._deferred is not None:
            # The previous dump never finished: drop it (its late answers
            # carry an old seq and are ignored).
            self._finish(NetlinkError(errno.ETIMEDOUT, "netlink dump abandoned"))
        self._seq += 1
        self._dump = Dump(kind, self._seq)
        d = self._deferred = Deferred()
        try:
            self.sock.send(dump_request(kind, self._seq))
        except OSError as e:
            self._finish(e)
            return d
        self.doRead()
        if self._deferred is not None and not self._reading:
            self._reading = True
            self.reactor.addReader(self)
        return d

    def doRead(self) -> None:
        while self._dump is not None and not self._dump.done:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as e:
                self._finish(e)
                return
            self._dump.feed(data)
        if self._dump is not None and self._dump.done:
            error = self._dump.error
            self._finish(NetlinkError(error, f"netlink dump failed: "
                                             f"{errno.errorcode.get(error, '?')}")
                         if error else None)

    def _finish(self, error: Exception | None = None) -> None:
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)
        d, dump = self._deferred, self._dump
        self._deferred = self._dump = None
        if d is None:
            return
        if error is not None:
            d.errback(error)
        else:
            d.callback(dump.items if dump is not None else [])

    def close(self) -> None:
        self._finish(NetlinkError(errno.ECANCELED, "closed"))
        self.sock.close()
