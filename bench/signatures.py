"""Datagram signatures: signing and verification time per algorithm.

The controller signs each multicast datagram once; every node verifies
every datagram.  So the verification time is paid N times per datagram and
the signing time once.  This times both for the algorithms SEER considered
(Ed25519, ECDSA P-256, RSA-2048 PSS -- the one it uses, seer.protocol.wire) on a
datagram-sized message, with the same cryptography (OpenSSL) build the
daemons use.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bench.common import add_json_flag, positive, table, write_json
from seer.protocol.datagrams import SigningKeys


def _ed25519() -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key()
    return key.sign, lambda sig, data: public.verify(sig, data)


def _p256() -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    key = ec.generate_private_key(ec.SECP256R1())
    public, algorithm = key.public_key(), ec.ECDSA(hashes.SHA256())
    return (lambda data: key.sign(data, algorithm),
            lambda sig, data: public.verify(sig, data, algorithm))


def _seer_rsa() -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    keys = SigningKeys.generate()
    return keys.sign, keys.verifying().check_signature  # what decode_datagram calls


ALGORITHMS = {"Ed25519": _ed25519, "ECDSA P-256": _p256, "RSA-2048 PSS (SEER)": _seer_rsa}


def _per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """The best of five runs of ``repeat`` calls, in microseconds per call:
    the least disturbed by whatever else the machine is doing."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def measure(size: int, repeat: int) -> list[dict]:
    data = os.urandom(size)
    results = []
    for name, make in ALGORITHMS.items():
        sign, verify = make()
        sig = sign(data)
        results.append({
            "algorithm": name, "signature_bytes": len(sig),
            "sign_us": round(_per_call_us(lambda sign=sign: sign(data), max(1, repeat // 10)), 1),
            "verify_us": round(_per_call_us(lambda v=verify, s=sig: v(s, data), repeat), 1),
        })
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench signatures", description=__doc__)
    parser.add_argument("--size", type=positive, default=300,
                        help="bytes signed, about a datagram of one command (default 300)")
    parser.add_argument("--repeat", type=positive, default=2000,
                        help="verifications per timing run (signing: a tenth; default 2000)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    results = measure(args.size, args.repeat)
    rows = [[r["algorithm"], r["signature_bytes"], r["sign_us"], r["verify_us"],
             round(r["verify_us"] * 100 / 1000, 2)] for r in results]
    print(table(f"datagram signatures, {args.size}-byte message (best of 5 runs)",
                ["algorithm", "sig bytes", "sign us", "verify us", "100 nodes verify, CPU ms"],
                rows))
    path = write_json("signatures", {"results": results, "size": args.size}, args.json)
    print(f"\nJSON: {path}")
    return {"results": results}
