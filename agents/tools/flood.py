"""The FLOODER agent's packet generator: UDP, TCP SYN or ICMP echo floods
from (spoofable) source addresses, at a set rate, bounded in time and count.

    python -m agents.tools.flood --type udp|syn|icmp --target ADDR
        --rate PPS --duration S [--count N] --sources CIDR[,CIDR...]
        --allowed CIDR[,CIDR...] [--port P] [--size BYTES] [--seed N]

Raw IPv4 sockets (IP_HDRINCL, root): each packet's source address is drawn
at random from --sources (never a network or broadcast address).  The
target must lie in --allowed -- the experiment's own addresses, handed over
by the agent -- or nothing is sent.  It stops by itself after --duration
seconds or --count packets, and prints what it sent as a JSON line.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys

import netaddr

from agents.tools.common import emit, pace
from backend.runtime.addresspool import usable_hosts

MAX_RATE = 1_000_000
MAX_DURATION = 3600.0
PROTOCOLS = {"udp": socket.IPPROTO_UDP, "syn": socket.IPPROTO_TCP, "icmp": socket.IPPROTO_ICMP}


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_header(src: bytes, dst: bytes, protocol: int, length: int, ident: int) -> bytes:
    # Linux fills in the checksum (and keeps our id) for IP_HDRINCL sockets.
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, ident, 0, 64, protocol, 0, src, dst)


def packet(kind: str, src: bytes, dst: bytes, port: int, payload: bytes, rng: random.Random) -> bytes:
    ident = rng.getrandbits(16)
    if kind == "udp":
        sport = rng.randint(1024, 65535)
        body = struct.pack("!HHHH", sport, port, 8 + len(payload), 0) + payload
        pseudo = struct.pack("!4s4sBBH", src, dst, 0, socket.IPPROTO_UDP, len(body))
        body = body[:6] + struct.pack("!H", checksum(pseudo + body) or 0xFFFF) + body[8:]
    elif kind == "syn":
        sport = rng.randint(1024, 65535)
        header = struct.pack("!HHLLBBHHH", sport, port, rng.getrandbits(32), 0, 5 << 4, 0x02,
                             64240, 0, 0)
        pseudo = struct.pack("!4s4sBBH", src, dst, 0, socket.IPPROTO_TCP, len(header))
        body = header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]
    else:
        header = struct.pack("!BBHHH", 8, 0, 0, ident, 0) + payload
        body = header[:2] + struct.pack("!H", checksum(header)) + header[4:]
    return ip_header(src, dst, PROTOCOLS[kind], 20 + len(body), ident) + body


def parse_networks(text: str) -> list[netaddr.IPNetwork]:
    return [netaddr.IPNetwork(c) for c in text.split(",") if c]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.tools.flood", description=__doc__)
    parser.add_argument("--type", choices=sorted(PROTOCOLS), required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--rate", type=float, required=True, help="packets per second")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--sources", required=True)
    parser.add_argument("--allowed", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--size", type=int, default=32, help="payload bytes (udp, icmp)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    target = netaddr.IPAddress(args.target)
    if not any(target in net for net in parse_networks(args.allowed)):
        emit("flood_refused", target=str(target))
        return 3
    if not 0 < args.rate <= MAX_RATE or not 0 < args.duration <= MAX_DURATION:
        print(f"rate must be in (0, {MAX_RATE}] and duration in (0, {MAX_DURATION}]",
              file=sys.stderr)
        return 2
    rng = random.Random(args.seed or None)
    ranges = [usable_hosts(n) for n in parse_networks(args.sources)]
    payload = b"\0" * args.size
    dst = target.packed
    port = args.port
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    destination = (str(target), 0)

    def one(_: int) -> None:
        first, last = rng.choice(ranges)
        src = rng.randint(first, last).to_bytes(4, "big")
        sock.sendto(packet(args.type, src, dst, port, payload, rng), destination)

    # A burst of at most 1 ms worth when late: a flood keeps its packet rate;
    # how evenly it spreads them matters less than for CBR.
    run = pace(1.0 / args.rate, args.duration, one, burst=max(1, int(args.rate / 1000)),
               count=args.count)
    emit("flood_done", type=args.type, target=str(target), packets=run.sent, errors=run.errors,
         seconds=round(run.seconds, 3), requested_pps=args.rate,
         achieved_pps=round(run.sent / run.seconds, 1) if run.seconds else 0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
