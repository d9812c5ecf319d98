"""What a hostile peer on the control LAN can throw at SEER, bounded.

The keys a compromised experiment node holds (it registers with a node
certificate of the experiment's CA and reads its WELCOME: the HMAC key, but
never the signing key), fuzzed datagrams of every kind a daemon drops, and
garbage connections at the controller's TLS port.  `python -m bench faults`
runs them long; tests/faults runs them short.

Safety: datagrams go to the experiment's group on a loopback interface only
(TTL 1, the outgoing interface set explicitly), connections to a loopback
address only, and every generator stops by itself: at its count, and at its
deadline, paced at a rate it is given (and which has a ceiling).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import random
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seer.config import parse_hostport
from seer.protocol.certs import CONTROLLER_NAME, CertDirectory
from seer.protocol.tags import TAG_COUNT, TAG_LEN
from seer.protocol.tls import client_context
from seer.protocol.wire import FrameDecoder, encode_frame

HEADER = struct.Struct(">4sBBQQH")  # magic, version, kind, epoch, serial, count
SIG_LEN, MAC_LEN = 256, 32
TAGGED = 0x80
#: The least any datagram takes: a tagged one with no tags and no body.
MIN_DATAGRAM = HEADER.size + TAG_COUNT.size + MAC_LEN
MAX_DATAGRAM = 65000
#: Ceilings whatever a caller asks: datagrams and connections per second.
MAX_DATAGRAM_RATE = 50_000.0
MAX_CONNECTION_RATE = 1_000.0

#: Each kind of fuzzed datagram, and the daemon's counter it must land in.
DATAGRAM_KINDS = {
    "random": "dropped_magic",          # random bytes, long enough for a header
    "truncated": "dropped_truncated",   # shorter than the least a datagram takes
    "version": "dropped_version",       # SEER, but another protocol version
    "kind": "dropped_kind",             # SEER version 2, an unknown datagram kind
    "oversized": "dropped_oversized",   # over the 65,000-byte limit
    "mac": "dropped_mac",               # a well-formed datagram, a wrong HMAC
    "signature": "dropped_signature",   # the right HMAC (a compromised node's), no signature
    "tag": "dropped_tag",               # the right HMAC and the compromised node's own tag,
                                        # others' tags guessed
}


def wait_turn(started: float, n: int, rate: float, seconds: float, slack: float = 0.0) -> bool:
    """Sleep until the ``n``-th injection is due, at ``rate`` a second since
    ``started`` (a wait of ``slack`` seconds or less is skipped); False once
    ``seconds`` are up."""
    now = time.monotonic()
    if now - started > seconds:
        return False
    ahead = n / rate - (now - started)
    if ahead > slack:
        time.sleep(ahead)
    return True


class HostileError(RuntimeError):
    """The hostile peer could not do what it set out to (the message says why)."""


def _loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        raise HostileError(f"{host} is not a loopback address: hostile traffic stays on this "
                           "machine")
    return host


# -- a compromised node ---------------------------------------------------------------


@dataclass(frozen=True)
class StolenKeys:
    """What a compromised node knows after its WELCOME."""

    node: str
    epoch: int
    serial: int
    hmac_key: bytes
    #: Its own tag's slot and key (WELCOME's ``tag``): it can tag for itself only.
    tag_slot: int = 0
    tag_key: bytes = b""


def register_as(controller: str, certs: str | Path, node: str,
                timeout: float = 10.0) -> StolenKeys:
    """Register over mutual TLS with ``node``'s certificate, as a compromised
    node would, read the WELCOME and hang up.  The controller then holds
    ``node`` as down: :func:`forget` drops it from the node table."""
    host, port = parse_hostport(controller, "controller")
    directory = CertDirectory(certs)
    context = client_context(directory.ca.cert, directory.node(node))
    deadline = time.monotonic() + timeout
    with socket.create_connection((_loopback(host), port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=CONTROLLER_NAME) as tls:
            tls.sendall(encode_frame({"type": "INFO", "name": node}))
            decoder = FrameDecoder()
            while time.monotonic() < deadline:
                data = tls.recv(1 << 16)
                if not data:
                    break
                for frame in decoder.feed(data):
                    if frame.type == "WELCOME":
                        tag = frame.get("tag") or {}
                        return StolenKeys(node, frame.get("epoch"), frame.get("serial"),
                                          bytes.fromhex(frame.get("keys")["hmac_key"]),
                                          int(tag.get("slot", 0)),
                                          bytes.fromhex(tag.get("key", "")))
                    if frame.type in ("REFUSED", "ERROR"):
                        raise HostileError(f"registering as {node}: {frame.get('error')}")
    raise HostileError(f"no WELCOME for {node} within {timeout:g} s")


def forget(exp: Any, node: str, timeout: float = 15.0) -> None:
    """FORGET ``node`` once the controller has noticed it is down."""
    from seer.client import RequestRefused

    deadline = time.monotonic() + timeout
    while True:
        try:
            exp.connection.request({"type": "FORGET", "node": node})
            return
        except RequestRefused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the controller has not seen the connection close yet


# -- datagrams ------------------------------------------------------------------------


def seal(hmac_key: bytes, kind: int, epoch: int, serial: int, count: int, body: bytes,
         signature: bytes | None = None) -> bytes:
    """A datagram as a compromised node can make one: any header and body,
    the HMAC right, and a signature that is not the controller's (random
    bytes unless given: it cannot sign)."""
    signed = HEADER.pack(b"SEER", 2, kind, epoch, serial, count) + body
    signed += signature if signature is not None else os.urandom(SIG_LEN)
    return signed + hmac.digest(hmac_key, signed, hashlib.sha256)


def seal_tagged(keys: StolenKeys, epoch: int, serial: int, count: int, body: bytes,
                slots: int) -> bytes:
    """A tagged datagram as a compromised node can make one: the HMAC right,
    its own tag right, every other node's tag guessed."""
    content = HEADER.pack(b"SEER", 2, 1 | TAGGED, epoch, serial, count) + body
    tags = bytearray(os.urandom(slots * TAG_LEN))
    own = hmac.digest(keys.tag_key, content, hashlib.sha256)[:TAG_LEN]
    tags[keys.tag_slot * TAG_LEN:(keys.tag_slot + 1) * TAG_LEN] = own
    sealed = content + bytes(tags) + TAG_COUNT.pack(slots)
    return sealed + hmac.digest(keys.hmac_key, sealed, hashlib.sha256)


def reseal(hmac_key: bytes, datagram: bytes, epoch: int) -> bytes:
    """A real datagram moved to ``epoch`` with its HMAC made again, its
    signature or tags as they were (they no longer match its header)."""
    moved = datagram[:6] + epoch.to_bytes(8, "big") + datagram[14:-MAC_LEN]
    return moved + hmac.digest(hmac_key, moved, hashlib.sha256)


def forged_command(serial: int) -> bytes:
    """The body a compromised node wants the others to run."""
    return json.dumps([{"type": "COMMAND", "target": "*", "agent": "RECORDER",
                        "group": "pwned", "command": "RECORD", "args": {"i": serial}}]).encode()


def fuzzed(kind: str, rng: random.Random, keys: StolenKeys | None, epoch: int) -> bytes:
    """One datagram of ``kind`` (see DATAGRAM_KINDS)."""
    if kind == "random":
        data = rng.randbytes(rng.randint(MIN_DATAGRAM, 1400))
        return data if data[:4] != b"SEER" else b"XEER" + data[4:]
    if kind == "truncated":
        return (b"SEER" + rng.randbytes(MIN_DATAGRAM))[:rng.randint(0, MIN_DATAGRAM - 1)]
    serial = rng.randint(1, 2**40)
    if kind == "version":
        return (HEADER.pack(b"SEER", rng.choice([0, 1, 3, 255]), 1, epoch, serial, 1)
                + rng.randbytes(rng.randint(SIG_LEN + MAC_LEN, 1000)))
    if kind == "kind":
        return (HEADER.pack(b"SEER", 2, rng.choice([0, 3, 7, 255]), epoch, serial, 1)
                + rng.randbytes(rng.randint(SIG_LEN + MAC_LEN, 1000)))
    if kind == "oversized":
        return HEADER.pack(b"SEER", 2, 1, epoch, serial, 1) + bytes(MAX_DATAGRAM + 1
                                                                     - HEADER.size)
    body = forged_command(serial)
    if kind == "mac":
        return seal(rng.randbytes(32), 1, epoch, serial, 1, body)
    if kind == "signature":
        if keys is None:
            raise HostileError("a datagram with the right HMAC needs a compromised node's keys")
        return seal(keys.hmac_key, 1, epoch, serial, 1, body)
    if kind == "tag":
        if keys is None or not keys.tag_key:
            raise HostileError("a tagged datagram needs a compromised node's keys and tag")
        return seal_tagged(keys, epoch, serial, 1, body, max(keys.tag_slot + 1, 32))
    raise HostileError(f"unknown datagram kind {kind!r}; known: {', '.join(DATAGRAM_KINDS)}")


def fuzz_stream(kinds: dict[str, float], rng: random.Random, keys: StolenKeys | None,
                epoch: int, tally: Counter) -> Iterator[bytes]:
    """Endless datagrams of the kinds given, drawn by weight; ``tally`` counts
    each kind as it is made."""
    names, weights = list(kinds), list(kinds.values())
    while True:
        kind = rng.choices(names, weights)[0]
        tally[kind] += 1
        yield fuzzed(kind, rng, keys, epoch)


class GroupSender:
    """Sends to the experiment's multicast group on a loopback interface, TTL 1."""

    def __init__(self, group: str, port: int, interface: str = "127.0.0.1") -> None:
        self.address = (group, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                             socket.inet_aton(_loopback(interface)))
        self.errors = 0

    def send(self, datagrams: Iterable[bytes], *, count: int, rate: float,
             seconds: float) -> int:
        """Send up to ``count`` datagrams at most ``rate`` a second, for at
        most ``seconds``; returns how many went."""
        rate = min(rate, MAX_DATAGRAM_RATE)
        started = time.monotonic()
        sent = 0
        source = iter(datagrams)
        while sent < count:
            data = next(source, None)
            if data is None or not wait_turn(started, sent, rate, seconds, slack=0.002):
                break
            try:
                self.sock.sendto(data, self.address)
            except OSError:
                self.errors += 1  # ENOBUFS under load: not sent, not counted as sent
                continue
            sent += 1
        return sent

    def close(self) -> None:
        self.sock.close()


def udp_sockets(pid: int) -> list[dict[str, int]]:
    """The UDP sockets process ``pid`` holds: its local port, the bytes
    waiting in its receive queue and the datagrams the kernel dropped
    because that queue was full (from /proc: no privilege needed for our
    own processes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            found.append({"port": int(fields[1].split(":")[1], 16),
                          "queued": int(fields[4].split(":")[1], 16), "drops": int(fields[12])})
    return found


def wait_read(pids: Iterable[int], port: int, timeout: float = 30.0) -> None:
    """Wait until every process's socket on ``port`` has read all that
    waits in its queue (so the next burst cannot overflow it)."""
    deadline = time.monotonic() + timeout
    pids = list(pids)
    while True:
        queues = {pid: [s["queued"] for s in udp_sockets(pid) if s["port"] == port]
                  for pid in pids}
        if not all(queues.values()):
            raise HostileError(f"no socket on port {port} in processes "
                               f"{[pid for pid, q in queues.items() if not q]}")
        if not any(sum(q) for q in queues.values()):
            return
        if time.monotonic() > deadline:
            raise HostileError(f"datagrams still unread on port {port} after {timeout:g} s")
        time.sleep(0.01)


# -- connections ----------------------------------------------------------------------

#: Each kind of garbage connection at the controller's TLS port.  All but
#: the last fail before TLS completes.
CONNECTION_KINDS = ("tcp-garbage", "tcp-reset", "tls-no-certificate", "tls-foreign-ca",
                    "tls-then-garbage")


@dataclass
class Door:
    """Where the controller listens, and the certificates to knock with."""

    controller: str
    certs: Path
    foreign_certs: Path
    experimenter: str

    def __post_init__(self) -> None:
        host, self.port = parse_hostport(self.controller, "controller")
        self.host = _loopback(host)
        ours, foreign = CertDirectory(self.certs), CertDirectory(self.foreign_certs)
        self.no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.no_cert.check_hostname, self.no_cert.verify_mode = False, ssl.CERT_NONE
        self.foreign = client_context(foreign.ca.cert, foreign.experimenter(
            foreign.experimenters()[0]))
        self.foreign.check_hostname, self.foreign.verify_mode = False, ssl.CERT_NONE
        self.ours = client_context(ours.ca.cert, ours.experimenter(self.experimenter))


def knock(door: Door, kind: str, rng: random.Random, timeout: float = 10.0) -> str:
    """One garbage connection of ``kind``; returns what became of it."""
    try:
        raw = socket.create_connection((door.host, door.port), timeout=timeout)
    except OSError as e:
        return f"connect failed: {e.strerror or e}"
    try:
        if kind == "tcp-garbage":
            raw.sendall(rng.randbytes(rng.randint(1, 4096)))
            return _until_closed(raw)
        if kind == "tcp-reset":
            raw.sendall(rng.randbytes(rng.randint(1, 64)))
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return "reset"
        if kind in ("tls-no-certificate", "tls-foreign-ca"):
            context = door.no_cert if kind == "tls-no-certificate" else door.foreign
            try:
                with context.wrap_socket(raw, server_hostname=CONTROLLER_NAME) as tls:
                    tls.sendall(encode_frame({"type": "NODES", "id": 1}))
                    return "refused" if not tls.recv(100) else "ANSWERED"
            except (ssl.SSLError, OSError):
                return "refused"
        if kind == "tls-then-garbage":
            with door.ours.wrap_socket(raw, server_hostname=CONTROLLER_NAME) as tls:
                tls.sendall(b"\x00\x00\x00\x08garbage!" + rng.randbytes(rng.randint(0, 256)))
                return "answered ERROR" if b"bad frame" in _read_some(tls) else "no ERROR"
        raise HostileError(f"unknown connection kind {kind!r}; known: "
                           f"{', '.join(CONNECTION_KINDS)}")
    except (ssl.SSLError, OSError) as e:
        return f"closed ({type(e).__name__})"
    finally:
        raw.close()


def _until_closed(sock: socket.socket) -> str:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    return "closed by the controller"


def _read_some(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096)
    except OSError:
        return b""


def hammer(door: Door, kinds: Iterable[str], *, count: int, rate: float, seconds: float,
           workers: int = 8, seed: int = 0,
           on_done: Callable[[int], None] | None = None) -> tuple[Counter, Counter]:
    """``count`` connections, the kinds taken in turn, at most ``rate`` a
    second, ``workers`` at a time, for at most ``seconds``.  Returns (kinds
    made, results)."""
    kinds = list(kinds)
    rate = min(rate, MAX_CONNECTION_RATE)
    made, results = Counter(), Counter()
    lock = threading.Lock()
    # No more than this many queued: the deadline stays near.
    queued = threading.BoundedSemaphore(workers * 2)
    started = time.monotonic()

    def one(i: int) -> None:
        kind = kinds[i % len(kinds)]
        try:
            result = knock(door, kind, random.Random(seed * 1_000_003 + i))
        finally:
            queued.release()
        with lock:
            made[kind] += 1
            results[f"{kind}: {result}"] += 1
            if on_done is not None:
                on_done(sum(made.values()))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for i in range(count):
            if not wait_turn(started, i, rate, seconds):
                break
            queued.acquire()
            futures.append(pool.submit(one, i))
        for f in futures:
            f.result()
    return made, results
