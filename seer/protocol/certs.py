"""The experiment's certificate authority and the certificates it issues.

``seer certs init`` makes, in one folder (``certs/`` by default)::

    ca.pem  ca.key                      the experiment's CA
    controller.pem  controller.key      the controller (DNS name seer-controller)
    nodes/<name>.pem  nodes/<name>.key  one per node daemon
    experimenters/<name>.pem  .key      one per experimenter (clients, scripts)

Every certificate says its role in the subject's OU (controller, node,
experimenter) and its name in the CN.  Peers check the chain to the CA, the
controller's DNS name, and the role: only experimenters may EXECUTE or PUT,
and a node may only speak as the node its certificate names.  Keys are
ECDSA P-256 (cheap handshakes for thousands of daemons) and written 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from seer.protocol.targets import check_node_name

ROLES = ("controller", "node", "experimenter")
CONTROLLER_NAME = "seer-controller"
VALID_DAYS = 365


class CertError(Exception):
    """Certificates that are missing or cannot be made; the message says what to do."""


@dataclass(frozen=True)
class CertPaths:
    cert: Path
    key: Path


class CertDirectory:
    """Where each certificate of an experiment lives."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def ca(self) -> CertPaths:
        return CertPaths(self.root / "ca.pem", self.root / "ca.key")

    @property
    def controller(self) -> CertPaths:
        return CertPaths(self.root / "controller.pem", self.root / "controller.key")

    def node(self, name: str) -> CertPaths:
        return CertPaths(self.root / "nodes" / f"{name}.pem", self.root / "nodes" / f"{name}.key")

    def experimenter(self, name: str) -> CertPaths:
        return CertPaths(
            self.root / "experimenters" / f"{name}.pem",
            self.root / "experimenters" / f"{name}.key",
        )

    def experimenters(self) -> list[str]:
        folder = self.root / "experimenters"
        return sorted(p.stem for p in folder.glob("*.pem")) if folder.is_dir() else []

    def nodes(self) -> list[str]:
        folder = self.root / "nodes"
        return sorted(p.stem for p in folder.glob("*.pem")) if folder.is_dir() else []

    def require(self, paths: CertPaths, what: str) -> CertPaths:
        for path in (paths.cert, paths.key, self.ca.cert):
            if not path.is_file():
                raise CertError(
                    f"{what}: {path} not found; create certificates with "
                    f"`seer certs init --dir {self.root}` (see `seer certs init --help`)"
                )
        return paths


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
