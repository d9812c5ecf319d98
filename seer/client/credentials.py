"""Where a client finds its controller and its credentials.

Each of the three comes from the caller (the CLI's --controller, --certs,
--identity), else from SEER_CONTROLLER, SEER_CERTS, SEER_IDENTITY, else from
the testbed `seer testbed up` started on this machine (SEER_TESTBED names one
if several run; :func:`seer.config.testbed_client`), else from the defaults:
127.0.0.1:7700, ./certs and the only experimenter certificate there.

Certificates are loaded by the standard library's ``ssl``: a client loads
neither Twisted nor cryptography.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import NamedTuple

from seer.config import testbed_client
from seer.protocol.certs import CertDirectory, CertError
from seer.protocol.tls import client_context

DEFAULT_CONTROLLER = "127.0.0.1:7700"
DEFAULT_CERTS = "certs"


class Credentials(NamedTuple):
    """What a connection needs: the controller (HOST:PORT, or unix:PATH for a
    script `seer run` started), the certificate folder and the experimenter
    name (None: the only one in the folder).  A named tuple, not a dataclass:
    a dataclass compiles its methods at every import, and every `seer`
    command is a fresh process."""

    controller: str
    certs: str | Path
    identity: str | None


def resolve(controller: str | None = None, certs: str | Path | None = None,
            identity: str | None = None, testbed: str | None = None) -> Credentials:
    """The controller and credentials to use: arguments, environment, the
    running testbed (``testbed``, else $SEER_TESTBED, else the only one),
    defaults -- in that order, each on its own.

    ControllerUnreachable when nothing says where the controller is: no
    testbed runs (or the one named does not) and ./certs has no experimenter
    to talk to a controller on the defaults with -- or several testbeds run
    and none was named."""
    controller = controller or os.environ.get("SEER_CONTROLLER")
    if controller is None:
        # The shell that ran `seer testbed up` talks to that testbed.
        found = testbed_client(testbed)
        if found is not None:
            controller = found["controller"]
            certs = certs or os.environ.get("SEER_CERTS") or found["certs"]
            identity = identity or os.environ.get("SEER_IDENTITY") or found["identity"]
        else:
            _no_testbed_to_talk_to(testbed or os.environ.get("SEER_TESTBED"), certs)
    return Credentials(
        controller=controller or DEFAULT_CONTROLLER,
        certs=certs or os.environ.get("SEER_CERTS") or DEFAULT_CERTS,
        identity=identity or os.environ.get("SEER_IDENTITY") or None,
    )


def _no_testbed_to_talk_to(named: str | None, certs: str | Path | None) -> None:
    """Say what is wrong when no controller was named and no testbed answers
    for it (and a controller on the defaults has no credentials here either)."""
    from seer.client.errors import ControllerUnreachable
    from seer.config import running_testbeds

    running = sorted(s["name"] for s in running_testbeds())
    if named:
        others = f" (running here: {', '.join(running)})" if running else ""
        raise ControllerUnreachable(
            f"testbed {named!r} is not running{others}; start it with `seer testbed up "
            f"TOPOLOGY --name {named}`, or name another with SEER_TESTBED / --testbed")
    if len(running) > 1:
        raise ControllerUnreachable(
            f"several testbeds run here ({', '.join(running)}): choose one with "
            f"SEER_TESTBED=NAME or --testbed NAME")
    if certs or os.environ.get("SEER_CERTS"):
        return  # certificates named: a controller on the defaults is meant (their error says)
    if not CertDirectory(DEFAULT_CERTS).experimenters():
        raise ControllerUnreachable(
            "no testbed is running and no controller was named: start a testbed with "
            "`seer testbed up examples/topologies/demo.toml`, or point at a controller with "
            "--controller HOST:PORT (or SEER_CONTROLLER) and its certificates with --certs")


def experimenter_identity(directory: CertDirectory, identity: str | None) -> str:
    """``identity``, or the only experimenter certificate of the folder; a
    CertError saying what to do when there is none or several."""
    if identity:
        return identity
    names = directory.experimenters()
    if len(names) == 1:
        return names[0]
    if not names:
        raise CertError(
            f"no experimenter certificate in {directory.root}/experimenters; create one with "
            f"`seer certs init --dir {directory.root} --experimenter NAME`"
        )
    raise CertError(
        f"several experimenter certificates in {directory.root} ({', '.join(names)}); "
        "choose one with --identity or SEER_IDENTITY"
    )


def tls_context(certs: str | Path, identity: str | None) -> tuple[ssl.SSLContext, str]:
    """The mutual-TLS context of the experimenter, and the experimenter's name."""
    directory = CertDirectory(certs)
    name = experimenter_identity(directory, identity)
    own = directory.require(directory.experimenter(name), f"experimenter {name}")
    return client_context(directory.ca.cert, own), name
