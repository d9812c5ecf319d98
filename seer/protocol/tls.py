"""Mutual TLS as every SEER connection uses it, on the standard library.

TLS 1.2 or newer, a certificate from the experiment's CA on both sides, the
controller's DNS name ``seer-controller``.  This is the blocking client's
side (``ssl``); the Twisted processes build the same policy with pyOpenSSL
in :mod:`backend.net.tls`.  Nothing here loads Twisted or cryptography.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from seer.protocol.certs import CertError, CertPaths


@dataclass(frozen=True)
class Identity:
    """A verified peer: the CN and OU of its certificate."""

    name: str
    role: str

    def __str__(self) -> str:
        return f"{self.role} {self.name}"


def read_pem(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CertError(
            f"cannot read {path}: {e.strerror}; create certificates with `seer certs init`"
        ) from None


def client_context(ca: Path, own: CertPaths) -> ssl.SSLContext:
    """Context for the blocking client (standard library)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(ca))
        context.load_cert_chain(str(own.cert), str(own.key))
    except (OSError, ssl.SSLError) as e:
        raise CertError(f"cannot load certificates ({own.cert}, {ca}): {e}") from None
    return context
