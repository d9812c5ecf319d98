"""Mutual TLS for every SEER connection, and who the peer is.

Twisted processes (controller, daemons) use pyOpenSSL through
``twisted.internet.ssl``; the blocking client uses the standard library's
``ssl``.  Both require TLS 1.2 or newer, a certificate from the experiment's
CA on both sides, and the controller's DNS name ``seer-controller``.
"""

from __future__ import annotations

import ssl as stdlib_ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from twisted.internet import ssl

from seer.protocol.certs import CONTROLLER_NAME, CertError, CertPaths


@dataclass(frozen=True)
class Identity:
    """A verified peer: the CN and OU of its certificate."""

    name: str
    role: str

    def __str__(self) -> str:
        return f"{self.role} {self.name}"


def identity_of(peer_certificate: Any) -> Identity:
    """The identity in a peer certificate (pyOpenSSL or cryptography object)."""
    cert = peer_certificate
    if hasattr(cert, "to_cryptography"):
        cert = cert.to_cryptography()
    if not isinstance(cert, x509.Certificate):
        raise ValueError("peer presented no certificate")

    def attribute(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return Identity(attribute(NameOID.COMMON_NAME), attribute(NameOID.ORGANIZATIONAL_UNIT_NAME))


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CertError(
            f"cannot read {path}: {e.strerror}; create certificates with `seer certs init`"
        ) from None


def server_options(ca: Path, own: CertPaths) -> ssl.CertificateOptions:
    """Context factory for the controller's listener: clients must present a cert."""
    authority = ssl.Certificate.loadPEM(_read(ca))
    private = ssl.PrivateCertificate.loadPEM(_read(own.key) + _read(own.cert))
    return ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        trustRoot=ssl.trustRootFromCertificates([authority]),
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


def client_options(ca: Path, own: CertPaths, server_name: str = CONTROLLER_NAME) -> Any:
    """Client connection creator for daemons (Twisted)."""
    authority = ssl.Certificate.loadPEM(_read(ca))
    private = ssl.PrivateCertificate.loadPEM(_read(own.key) + _read(own.cert))
    return ssl.optionsForClientTLS(
        server_name,
        trustRoot=authority,
        clientCertificate=private,
        extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2},
    )


def client_context(ca: Path, own: CertPaths) -> stdlib_ssl.SSLContext:
    """Context for the blocking client (standard library)."""
    context = stdlib_ssl.SSLContext(stdlib_ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = stdlib_ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(ca))
        context.load_cert_chain(str(own.cert), str(own.key))
    except (OSError, stdlib_ssl.SSLError) as e:
        raise CertError(f"cannot load certificates ({own.cert}, {ca}): {e}") from None
    return context
