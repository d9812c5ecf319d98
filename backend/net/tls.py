"""Mutual TLS for the Twisted processes (controller, daemons), and who the peer is.

pyOpenSSL through ``twisted.internet.ssl``, with the policy every SEER
connection shares (seer.protocol.tls): TLS 1.2 or newer, a certificate from
the experiment's CA on both sides, the controller's DNS name
``seer-controller``.  The peer's identity is its certificate's CN (name)
and OU (role).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from twisted.internet import ssl

from seer.protocol.certs import CONTROLLER_NAME, CertPaths
from seer.protocol.tls import Identity, read_pem


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


def server_options(ca: Path, own: CertPaths) -> ssl.CertificateOptions:
    """Context factory for the controller's listener: clients must present a cert."""
    authority = ssl.Certificate.loadPEM(read_pem(ca))
    private = ssl.PrivateCertificate.loadPEM(read_pem(own.key) + read_pem(own.cert))
    return ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        trustRoot=ssl.trustRootFromCertificates([authority]),
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


def client_options(ca: Path, own: CertPaths, server_name: str = CONTROLLER_NAME) -> Any:
    """Client connection creator for daemons (Twisted)."""
    authority = ssl.Certificate.loadPEM(read_pem(ca))
    private = ssl.PrivateCertificate.loadPEM(read_pem(own.key) + read_pem(own.cert))
    return ssl.optionsForClientTLS(
        server_name,
        trustRoot=authority,
        clientCertificate=private,
        extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2},
    )
