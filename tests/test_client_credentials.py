"""Where a client finds its controller and credentials: arguments, then the
environment, then the running testbed, then the defaults."""

from __future__ import annotations

import pytest

from seer.client import ControllerUnreachable
from seer.client.credentials import (
    DEFAULT_CERTS,
    DEFAULT_CONTROLLER,
    Credentials,
    experimenter_identity,
    resolve,
    tls_context,
)
from seer.protocol.certs import CertDirectory, CertError
from seer.testbed import state

TESTBED_CLIENT = {"controller": "198.18.0.1:7700", "certs": "/tb/certs", "identity": "tb"}


@pytest.fixture
def testbeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./certs here, whatever the checkout has
    monkeypatch.setenv("SEER_TESTBED_DIR", str(tmp_path / "testbeds"))
    for name in ("SEER_TESTBED", "SEER_CONTROLLER", "SEER_CERTS", "SEER_IDENTITY"):
        monkeypatch.delenv(name, raising=False)

    def up(name: str, client: dict[str, str], is_up: bool = True) -> None:
        state.write(name, {"name": name, "up": is_up, "client": client})

    return up


def test_certificates_without_a_controller_mean_the_default_controller(testbeds):
    assert resolve(certs="mine") == Credentials(DEFAULT_CONTROLLER, "mine", None)


def test_nothing_given_and_no_testbed_says_what_to_do(testbeds, tmp_path):
    with pytest.raises(ControllerUnreachable, match="no testbed is running and no controller"):
        resolve()
    (tmp_path / DEFAULT_CERTS / "experimenters").mkdir(parents=True)
    (tmp_path / DEFAULT_CERTS / "experimenters" / "me.pem").write_text("")
    assert resolve() == Credentials(DEFAULT_CONTROLLER, DEFAULT_CERTS, None)


def test_the_running_testbed_comes_before_the_defaults(testbeds):
    testbeds("demo", TESTBED_CLIENT)
    assert resolve() == Credentials("198.18.0.1:7700", "/tb/certs", "tb")


def test_the_environment_comes_before_the_testbed(testbeds, monkeypatch):
    testbeds("demo", TESTBED_CLIENT)
    monkeypatch.setenv("SEER_CERTS", "/env/certs")
    assert resolve() == Credentials("198.18.0.1:7700", "/env/certs", "tb")
    monkeypatch.setenv("SEER_CONTROLLER", "127.0.0.1:9")
    # A controller of its own: the testbed's certificates are not for it.
    assert resolve() == Credentials("127.0.0.1:9", "/env/certs", None)


def test_arguments_come_first(testbeds, monkeypatch):
    testbeds("demo", TESTBED_CLIENT)
    monkeypatch.setenv("SEER_IDENTITY", "env")
    assert resolve("127.0.0.1:1", "mine", "me") == Credentials("127.0.0.1:1", "mine", "me")


def test_two_running_testbeds_need_a_name(testbeds, monkeypatch):
    testbeds("a", TESTBED_CLIENT)
    testbeds("b", dict(TESTBED_CLIENT, controller="198.18.0.2:7700"))
    with pytest.raises(ControllerUnreachable, match=r"several testbeds run here \(a, b\)"):
        resolve()
    monkeypatch.setenv("SEER_TESTBED", "b")
    assert resolve().controller == "198.18.0.2:7700"


def test_a_testbed_that_is_down_is_not_used(testbeds):
    testbeds("demo", TESTBED_CLIENT, is_up=False)
    assert resolve(certs="mine").controller == DEFAULT_CONTROLLER
    with pytest.raises(ControllerUnreachable, match="no testbed is running"):
        resolve()


def test_the_only_experimenter_is_the_identity(certs_dir, tmp_path):
    assert experimenter_identity(CertDirectory(certs_dir), "bob") == "bob"
    with pytest.raises(CertError, match=r"several experimenter certificates .*\(alice, bob\)"):
        experimenter_identity(CertDirectory(certs_dir), None)
    with pytest.raises(CertError, match="seer certs init --dir"):
        experimenter_identity(CertDirectory(tmp_path), None)


def test_the_tls_context_is_the_experimenters(certs_dir):
    context, name = tls_context(certs_dir, "alice")
    assert name == "alice" and context.check_hostname
    with pytest.raises(CertError, match="experimenter carol"):
        tls_context(certs_dir, "carol")
