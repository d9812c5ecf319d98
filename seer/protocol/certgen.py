"""Making the experiment's CA and the certificates it issues (`seer certs init`).

The layout of the folder is :mod:`seer.protocol.certs`; this module is
imported only by what makes certificates (`seer certs init`, the testbed,
the loopback runner), so that clients never load cryptography's x509.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from seer.protocol.certs import CONTROLLER_NAME, ROLES, CertDirectory, CertError, CertPaths
from seer.protocol.targets import check_node_name

VALID_DAYS = 365


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, role: str, experiment: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"SEER experiment {experiment}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=VALID_DAYS)
    )


def _load_ca(directory: CertDirectory) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    paths = directory.ca
    if not (paths.cert.is_file() and paths.key.is_file()):
        raise CertError(f"no CA in {directory.root}; run `seer certs init --dir {directory.root}`")
    cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    key = serialization.load_pem_private_key(paths.key.read_bytes(), None)
    return cert, key


def _experiment_of(ca_cert: x509.Certificate) -> str:
    org = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    return str(org).removeprefix("SEER experiment ")


def experiment_of(directory: CertDirectory) -> str:
    """The experiment name the CA was made for."""
    return _experiment_of(_load_ca(directory)[0])


def create_ca(directory: CertDirectory, experiment: str) -> None:
    key = _new_key()
    name = _name(f"SEER CA {experiment}", "ca", experiment)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = _validity(builder).sign(key, hashes.SHA256())
    _write(directory.ca.key, _key_pem(key), 0o600)
    _write(directory.ca.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def issue(
    directory: CertDirectory,
    role: str,
    name: str,
    addresses: Iterable[str] = (),
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> CertPaths:
    """Issue (or re-issue) the certificate of one controller, node or experimenter.

    ``ca`` is the loaded CA, to save reloading it for every certificate.
    """
    if role not in ROLES:
        raise CertError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if role == "controller":
        name = CONTROLLER_NAME
        paths = directory.controller
    else:
        try:
            check_node_name(name)
        except ValueError as e:
            raise CertError(str(e)) from None
        if name == CONTROLLER_NAME:
            raise CertError(f"{CONTROLLER_NAME!r} is reserved for the controller")
        paths = directory.node(name) if role == "node" else directory.experimenter(name)
    ca_cert, ca_key = ca or _load_ca(directory)
    experiment = _experiment_of(ca_cert)
    key = _new_key()
    alt_names: list[x509.GeneralName] = [x509.DNSName(name)]
    for address in addresses:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            raise CertError(f"{address!r} is not an IP address") from None
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if role == "controller":
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name, role, experiment))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    cert = _validity(builder).sign(ca_key, hashes.SHA256())
    _write(paths.key, _key_pem(key), 0o600)
    _write(paths.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def init(
    root: Path | str,
    nodes: Iterable[str],
    experimenters: Iterable[str],
    experiment: str = "seer",
    controller_addresses: Iterable[str] = ("127.0.0.1",),
    force: bool = False,
) -> CertDirectory:
    """Create a CA (unless one exists) and every certificate asked for.

    An existing CA is kept so certificates issued before stay valid; with
    ``force`` a new CA replaces it (and every old certificate stops working).
    """
    directory = CertDirectory(root)
    nodes, experimenters = list(nodes), list(experimenters)
    for name in nodes + experimenters:
        try:
            check_node_name(name)
        except ValueError as e:
            raise CertError(str(e)) from None
    if force or not directory.ca.cert.is_file():
        create_ca(directory, experiment)
    ca = _load_ca(directory)
    issue(directory, "controller", CONTROLLER_NAME, controller_addresses, ca)
    for name in nodes:
        issue(directory, "node", name, ca=ca)
    for name in experimenters:
        issue(directory, "experimenter", name, ca=ca)
    return directory
