"""The CBR agent's sender and sink: UDP at a constant bit rate.

    python -m agents.tools.cbr send --to ADDR:PORT --rate BITS --size BYTES
                                    --duration S [--bind ADDR]
    python -m agents.tools.cbr sink --bind ADDR:PORT [--idle S]

Each packet carries a sequence number and the sender's send time.  The
sender paces packets to the rate and prints its result as a JSON line; the
sink prints, every second and when it ends (SIGTERM, or --idle seconds
without packets after the first), what it received: packets, bytes, the
received rate (bits/s, first to last packet), loss (from the sequence
numbers) and jitter (RFC 3550 interarrival jitter, ms).
"""

from __future__ import annotations

import argparse
import signal
import socket
import struct
import sys
import time

from agents.tools.common import emit, pace

HEADER = struct.Struct(">QdI")  # sequence, send time, sender id
HEADER_BYTES = 28  # IPv4 + UDP headers: counted in the rate like tc counts them


def send(args: argparse.Namespace) -> int:
    host, port = args.to.rsplit(":", 1)
    destination = (host, int(port))
    payload_size = max(HEADER.size, args.size - HEADER_BYTES)
    packet_bits = (payload_size + HEADER_BYTES) * 8
    padding = b"\0" * (payload_size - HEADER.size)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.bind:
        sock.bind((args.bind, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sender = int(time.time() * 1000) & 0xFFFFFFFF

    def one(sequence: int) -> None:
        sock.sendto(HEADER.pack(sequence, time.time(), sender) + padding, destination)

    # No bursts (burst=1): a sink measures jitter, and a burst is jitter.
    run = pace(packet_bits / args.rate, args.duration, one)
    emit("cbr_sent", packets=run.sent, errors=run.errors,
         bytes=run.sent * (payload_size + HEADER_BYTES), seconds=round(run.seconds, 3),
         requested_bps=args.rate, achieved_bps=round(run.sent * packet_bits / run.seconds, 1))
    return 0


class Sink:
    def __init__(self) -> None:
        self.packets = self.bytes = 0
        self.first = self.last = None
        self.highest: dict[int, int] = {}
        self.jitter = 0.0
        self.transit: float | None = None

    def receive(self, data: bytes, arrival: float) -> None:
        if len(data) < HEADER.size:
            return
        sequence, sent_at, sender = HEADER.unpack_from(data)
        self.packets += 1
        self.bytes += len(data) + HEADER_BYTES
        self.first = self.first or arrival
        self.last = arrival
        self.highest[sender] = max(self.highest.get(sender, -1), sequence)
        transit = arrival - sent_at
        if self.transit is not None:
            self.jitter += (abs(transit - self.transit) - self.jitter) / 16
        self.transit = transit

    def result(self) -> dict[str, object]:
        expected = sum(h + 1 for h in self.highest.values())
        span = (self.last - self.first) if self.packets > 1 else 0.0
        return {"packets": self.packets, "bytes": self.bytes,
                "received_bps": round(self.bytes * 8 / span, 1) if span else 0.0,
                "lost": max(0, expected - self.packets),
                "loss": round(max(0, expected - self.packets) / expected, 4) if expected else 0.0,
                "jitter_ms": round(self.jitter * 1000, 3), "seconds": round(span, 3)}


def sink(args: argparse.Namespace) -> int:
    host, port = args.bind.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((host, int(port)))
    sock.settimeout(0.2)
    stats = Sink()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    emit("cbr_listening", address=args.bind)
    last_print = time.monotonic()
    while not stopping:
        try:
            data = sock.recv(65535)
            stats.receive(data, time.time())
        except TimeoutError:
            pass
        except OSError:
            continue
        now = time.monotonic()
        if now - last_print >= 1.0:
            emit("cbr_sink", **stats.result())
            last_print = now
        if args.idle and stats.last and time.time() - stats.last > args.idle:
            break
    emit("cbr_received", **stats.result())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.tools.cbr", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    p = sub.add_parser("send")
    p.add_argument("--to", required=True)
    p.add_argument("--rate", type=float, required=True, help="bits per second")
    p.add_argument("--size", type=int, default=1000, help="packet size in bytes, IP header included")
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--bind", default="")
    p = sub.add_parser("sink")
    p.add_argument("--bind", required=True)
    p.add_argument("--idle", type=float, default=0.0)
    args = parser.parse_args(argv)
    return send(args) if args.role == "send" else sink(args)


if __name__ == "__main__":
    sys.exit(main())
