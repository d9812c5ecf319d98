"""The Python floor: what the least a Python node could do per command costs.

N processes, one per node as SEER's daemons are, each a plain loop with no
framework: receive the multicast datagram, check its HMAC-SHA256 and then
either its own 8-byte tag in the datagram's table of one per node
(`--check tag`, the default, as protocol version 2 does up to 256 nodes) or
its RSA-2048 PSS signature (`--check signature`, as beyond) -- SEER's
algorithms and layout -- decode its JSON, and answer with a JSON outcome
under an HMAC by unicast UDP.  The sender times each round until all N
answers are in; each node's CPU comes from /proc.  SEER's daemon does this
and more (ordering, repair, scheduling, the agent, its REPORT's
bookkeeping, stats, heartbeats): the gap between the two is SEER's own
cost; this floor is Python's.

    python -m bench pyfloor --nodes 100 --rounds 200 [--check signature]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import add_json_flag, positive, process_cpu, summary_ms, table, write_json
from seer.protocol.tags import TAG_COUNT, TAG_LEN

ROOT = Path(__file__).resolve().parent.parent
SIG_LEN, MAC_LEN = 256, 32


def _tag_key(master: bytes, slot: int) -> bytes:
    """Node `slot`'s own tag key (SEER hands it over TLS; here it is derived)."""
    return hmac.digest(master, slot.to_bytes(2, "big"), "sha256")


def _padding():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                       salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256()


def node(name: str, group: str, port: int, reply: int, key_file: str, slot: int) -> None:
    """One node: verify, decode, answer -- until a datagram says stop.

    `slot` is the node's place in the tag table, or -1 to check the RSA
    signature instead."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    material = Path(key_file).read_bytes()
    hmac_key, tag_master = material[:32], material[32:64]
    public = load_der_public_key(material[64:])
    tag_key = _tag_key(tag_master, slot) if slot >= 0 else b""
    pss, sha256 = _padding()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.connect(("127.0.0.1", reply))
    out.send(b"ready")
    while True:
        data = s.recv(65536)
        signed, mac = data[:-MAC_LEN], data[-MAC_LEN:]
        if not hmac.compare_digest(hmac.digest(hmac_key, signed, "sha256"), mac):
            continue
        if slot >= 0:
            count, = TAG_COUNT.unpack(signed[-TAG_COUNT.size:])
            body = signed[:-TAG_COUNT.size - TAG_LEN * count]
            tag = signed[len(body) + TAG_LEN * slot:len(body) + TAG_LEN * (slot + 1)]
            if not hmac.compare_digest(hmac.digest(tag_key, body, "sha256")[:TAG_LEN], tag):
                continue
        else:
            body, sig = signed[:-SIG_LEN], signed[-SIG_LEN:]
            public.verify(sig, body, pss, sha256)
        message = json.loads(body)
        if message.get("stop"):
            return
        answer = json.dumps({"node": name, "serial": message["serial"],
                             "outcomes": {message["group"]: {"status": "applied",
                                                             "result": "ECHO"}}}).encode()
        out.send(answer + hmac.digest(hmac_key, answer, "sha256"))


def measure(n: int, rounds: int, workdir: Path, check: str = "tag") -> dict:
    # Here, not at the top: the node processes import this module too, and
    # stay as bare as a node can be.
    from seer.localrun import free_udp_port
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    private = rsa.generate_private_key(65537, 2048)
    hmac_key, tag_master = os.urandom(32), os.urandom(32)
    tag_keys = [_tag_key(tag_master, slot) for slot in range(n)]
    key_file = workdir / "keys"
    key_file.write_bytes(hmac_key + tag_master + private.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
    pss, sha256 = _padding()
    answers = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answers.bind(("127.0.0.1", 0))
    answers.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    group, port = f"239.255.{os.getpid() % 250 + 1}.{n % 250 + 2}", free_udp_port()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))

    def seal(message: dict) -> bytes:
        body = json.dumps(message).encode()
        if check == "tag":
            tags = b"".join(hmac.digest(k, body, "sha256")[:TAG_LEN] for k in tag_keys)
            signed = body + tags + TAG_COUNT.pack(n)
        else:
            signed = body + private.sign(body, pss, sha256)
        return signed + hmac.digest(hmac_key, signed, "sha256")

    nodes = [subprocess.Popen([sys.executable, "-m", "bench.pyfloor", f"n{i}", group, str(port),
                               str(answers.getsockname()[1]), str(key_file),
                               str(i if check == "tag" else -1)], cwd=ROOT)
             for i in range(n)]
    try:
        answers.settimeout(60)
        for _ in range(n):
            answers.recv(64)
        answers.settimeout(5)
        # The datagrams are sealed before the clock starts: signing and
        # tagging are the controller's cost, not the nodes'.
        sealed = [seal({"serial": r, "group": "floor", "type": "COMMAND", "agent": "NOOP",
                        "command": "ECHO", "target": "*"}) for r in range(rounds + 1)]
        sender.sendto(sealed[0], (group, port))  # warm-up round
        _collect(answers, n)
        before = sum(process_cpu(p.pid) for p in nodes)
        latencies = []
        for data in sealed[1:]:
            started = time.perf_counter()
            sender.sendto(data, (group, port))
            if _collect(answers, n):
                latencies.append(time.perf_counter() - started)
        cpu = sum(process_cpu(p.pid) for p in nodes) - before
    finally:
        sender.sendto(seal({"stop": True}), (group, port))
        for p in nodes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return {"nodes": n, "check": check, "latency_ms": summary_ms(latencies),
            "lost_rounds": rounds - len(latencies),
            "cpu_ms_per_node_per_command": round(cpu / n / rounds * 1000, 3)}


def _collect(answers: socket.socket, n: int) -> bool:
    got = 0
    while got < n:
        try:
            answers.recv(2048)
        except TimeoutError:
            return False
        got += 1
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench pyfloor", description=__doc__)
    parser.add_argument("--nodes", type=positive, nargs="+", default=[10, 100],
                        help="node counts, one run each (default 10 100)")
    parser.add_argument("--rounds", type=positive, default=200, help="commands per run (200)")
    parser.add_argument("--check", choices=["tag", "signature"], default="tag",
                        help="what a node checks beside the HMAC: its own tag, as SEER does "
                             "up to 256 nodes (default), or the RSA signature, as beyond")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    results = []
    for n in args.nodes:
        with tempfile.TemporaryDirectory(prefix="seer-pyfloor-") as workdir:
            results.append(measure(n, args.rounds, Path(workdir), args.check))
    print(table(f"the Python floor: verify ({args.check}), decode, answer; one process "
                f"per node ({args.rounds} commands)",
                ["nodes", "p50 ms", "p95 ms", "p99 ms", "node CPU ms/cmd", "lost rounds"],
                [[r["nodes"], r["latency_ms"]["p50"], r["latency_ms"]["p95"],
                  r["latency_ms"]["p99"], r["cpu_ms_per_node_per_command"], r["lost_rounds"]]
                 for r in results]))
    path = write_json("pyfloor", {"results": results, "rounds": args.rounds,
                                  "check": args.check}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results}


if __name__ == "__main__":
    name, group, port, reply, key_file, slot = sys.argv[1:7]
    node(name, group, int(port), int(reply), key_file, int(slot))
