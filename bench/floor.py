"""The floor: one multicast datagram, N minimal receivers answering by UDP.

No framework on this machine can reach N nodes faster than this: a sender
multicasts a 16-byte datagram on 127.0.0.1 (TTL 1) and N receivers -- plain
sockets, many per process, no verification, no parsing -- each answer with
a unicast UDP datagram.  A round's latency is the time until every answer
is in.

    python -m bench.floor receive --group G:P --reply PORT --count K
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _member(group: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((group, port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("127.0.0.1")))
    return s


def receive(group: str, port: int, reply: int, count: int) -> None:
    members = [_member(group, port) for _ in range(count)]
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.sendto(b"ready" + struct.pack("!I", count), ("127.0.0.1", reply))
    poller = select.epoll()
    for m in members:
        poller.register(m.fileno(), select.EPOLLIN)
    by_fd = {m.fileno(): m for m in members}
    while True:
        for fd, _ in poller.poll():
            data = by_fd[fd].recv(64)
            if data == b"quit":
                return
            out.sendto(data, ("127.0.0.1", reply))


def measure(n: int, rounds: int, per_process: int = 50) -> list[float]:
    """Round latencies (seconds) for n receivers."""
    group = f"239.255.{os.getpid() % 250 + 1}.{n % 250 + 1}"
    answers = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answers.bind(("127.0.0.1", 0))
    answers.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    reply_port = answers.getsockname()[1]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    processes = []
    try:
        for k in range(0, n, per_process):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "bench.floor", "receive", "--group", f"{group}:{port}",
                 "--reply", str(reply_port), "--count", str(min(per_process, n - k))],
                cwd=ROOT))
        ready = 0
        answers.settimeout(30)
        while ready < n:
            data = answers.recv(64)
            if data.startswith(b"ready"):
                ready += struct.unpack("!I", data[5:9])[0]
        answers.settimeout(2)
        latencies = []
        for r in range(rounds):
            round_id = struct.pack("!QQ", r, os.getpid())
            started = time.perf_counter()
            sender.sendto(round_id, (group, port))
            got = 0
            while got < n:
                try:
                    if answers.recv(64) == round_id:
                        got += 1
                except TimeoutError:
                    break
            if got == n:
                latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        for _ in processes:
            sender.sendto(b"quit", (group, port))
        for p in processes:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    sub = parser.add_subparsers(dest="role", required=True)
    p = sub.add_parser("receive")
    p.add_argument("--group", required=True)
    p.add_argument("--reply", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    group, port = args.group.rsplit(":", 1)
    receive(group, int(port), args.reply, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
