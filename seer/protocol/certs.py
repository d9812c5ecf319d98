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

This module is only the layout (what the client needs to find its files);
making certificates is :mod:`seer.protocol.certgen`, which loads
cryptography's x509 machinery only when it is asked to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

ROLES = ("controller", "node", "experimenter")
CONTROLLER_NAME = "seer-controller"


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


def init(
    root: Path | str,
    nodes: Iterable[str],
    experimenters: Iterable[str],
    experiment: str = "seer",
    controller_addresses: Iterable[str] = ("127.0.0.1",),
    force: bool = False,
) -> CertDirectory:
    """Create a CA (unless one exists) and every certificate asked for
    (see :func:`seer.protocol.certgen.init`)."""
    from seer.protocol import certgen

    return certgen.init(root, nodes, experimenters, experiment, controller_addresses, force)
