"""Daemons find the controller from its PINGs, and a forged PING delays no one
(issue 18, "Finding the controller").

Twenty daemons start with no controller address; then, while a hostile
member of the group multicasts PINGs every 0.1 s that point at a TLS
listener with a foreign experiment's controller certificate, the real
controller starts.  Every daemon must register within 5 s of the
controller's start, and the rogue address must be refused (logged).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from e2e import GroupTap, lab_for
from seer.protocol.certs import CertDirectory
from seer.protocol.datagrams import KIND_PING, SigningKeys, encode_datagram

pytestmark = pytest.mark.e2e


class ForeignController:
    """A TLS listener on 127.0.0.1 with another experiment's controller certificate."""

    def __init__(self, certs: CertDirectory) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(certs.controller.cert), str(certs.controller.key))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.handshakes = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass  # the daemon refuses our certificate: as it should
            finally:
                self.handshakes += 1
                conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


def test_twenty_daemons_find_the_controller_despite_forged_pings(tmp_path, certs_dir,
                                                                 foreign_certs_dir):
    lab = lab_for(tmp_path, certs_dir, 20, discover=True)
    rogue = ForeignController(CertDirectory(foreign_certs_dir))
    tap = GroupTap(lab)
    forged = encode_datagram(SigningKeys.generate(), KIND_PING, 1, 0,
                             body={"t": 0, "controller": rogue.address})
    stop_forging = threading.Event()

    def forge() -> None:
        while not stop_forging.wait(0.1):
            tap.inject(forged)

    forger = threading.Thread(target=forge, daemon=True)
    try:
        lab.make_certs()
        for name in lab.nodes:
            lab.start_daemon(name)
        forger.start()
        # The rogue gets its say before the real controller exists.
        deadline = time.monotonic() + 20
        while rogue.handshakes < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        lab.start_controller()
        lab.wait_registered(timeout=30)
        took = time.monotonic() - started  # from the controller's start
        print(f"\n20 daemons without a controller address: all registered {took:.2f} s after "
              f"the controller started; the forged PINGs' listener saw {rogue.handshakes} "
              "refused handshakes")
        assert took <= 5.0
        assert rogue.handshakes >= 20  # every daemon tried it, and went on
        assert "is not this experiment's controller" in lab.log_tail("n1", 200)
    finally:
        stop_forging.set()
        forger.join(timeout=5)
        tap.close()
        rogue.close()
        lab.stop()


def test_a_daemon_the_controller_will_never_register_exits_non_zero_saying_why(
        tmp_path, certs_dir):
    import shutil

    # A certificate folder in which node n2's files are node n1's certificate.
    certs = tmp_path / "certs"
    shutil.copytree(certs_dir, certs)
    for suffix in ("pem", "key"):
        shutil.copy(certs / "nodes" / f"n1.{suffix}", certs / "nodes" / f"n2.{suffix}")
    lab = lab_for(tmp_path, certs_dir, 1)
    with lab:
        lab.certs = certs  # the impostor's folder, for the daemon started next
        lab.start_daemon("n2")
        code = lab.daemons["n2"].wait(timeout=60)
    log = lab.log_tail("n2", 50)
    print(f"\nn2 with n1's certificate: exit code {code}; last line: {log.splitlines()[-1]}")
    assert code == 1
    assert "the controller refused to register n2: this certificate is for node 'n1'" in log
