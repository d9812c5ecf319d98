"""`seer dashboard`: prints the page's URL from the controller, opens a browser only
where one can be seen (never here), and stays a light client command."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys

import pytest

from seer.cli import dashboard
from seer.cli.entry import build_parser

URL = "http://127.0.0.1:9/dashboard/?token=abc"


class FakeExperiment:
    def __init__(self, status: dict) -> None:
        self._status = status

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def status(self) -> dict:
        return self._status


@pytest.fixture
def opened(monkeypatch):
    """Browsers that would have been opened (none is)."""
    calls = []
    import webbrowser

    monkeypatch.setattr(webbrowser, "open", lambda url: calls.append(url))
    return calls


def run(monkeypatch, argv: list[str], status: dict) -> int:
    monkeypatch.setattr(dashboard, "open_experiment", lambda args: FakeExperiment(status))
    args = build_parser(["dashboard", *argv]).parse_args(["dashboard", *argv])
    return args.func(args)


def test_it_prints_the_url_the_controller_gives(monkeypatch, capsys, opened):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run(monkeypatch, [], {"dashboard": URL, "metrics": "m"}) == 0
    assert capsys.readouterr().out == URL + "\n"
    assert opened == []  # no display: no browser


def test_json_gives_the_url_and_metrics(monkeypatch, capsys, opened):
    assert run(monkeypatch, ["--json", "--no-browser"], {"dashboard": URL, "metrics": "m"}) == 0
    assert json.loads(capsys.readouterr().out) == {"dashboard": URL, "metrics": "m"}


def test_a_controller_without_an_http_port_is_said_so(monkeypatch, capsys, opened):
    assert run(monkeypatch, ["--no-browser"], {"dashboard": None}) == 1
    assert "no HTTP port" in capsys.readouterr().err


def test_a_browser_opens_only_with_a_display_on_a_terminal_outside_ci(monkeypatch, opened):
    assert dashboard.can_open_browser({"DISPLAY": ":0"}, tty=True)
    assert dashboard.can_open_browser({"WAYLAND_DISPLAY": "w"}, tty=True)
    assert not dashboard.can_open_browser({}, tty=True)
    assert not dashboard.can_open_browser({"DISPLAY": ":0"}, tty=False)
    assert not dashboard.can_open_browser({"DISPLAY": ":0", "CI": "true"}, tty=True)
    monkeypatch.setattr(dashboard, "can_open_browser", lambda: True)
    run(monkeypatch, [], {"dashboard": URL})
    assert opened == [URL]
    run(monkeypatch, ["--no-browser"], {"dashboard": URL})
    assert opened == [URL]


PROBE = """
import json, sys
from seer.cli import main
code = main(sys.argv[1:])
heavy = ("twisted", "OpenSSL", "cryptography.x509", "webbrowser")
print(json.dumps([code, sorted(m for m in heavy if m in sys.modules)]))
"""


def test_seer_dashboard_loads_no_twisted_pyopenssl_or_x509(tmp_path, certs_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    run_ = subprocess.run([sys.executable, "-c", PROBE, "dashboard", "--controller",
                           f"127.0.0.1:{closed}", "--certs", str(certs_dir), "--identity",
                           "alice"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    code, loaded = json.loads(run_.stdout.splitlines()[-1])
    assert code == 3  # nobody listens there
    assert loaded == []


def test_the_command_is_in_seers_help():
    parser = build_parser([])
    assert isinstance(parser, argparse.ArgumentParser)
    help_text = subprocess.run([sys.executable, "-m", "seer", "--help"], capture_output=True,
                               text=True, timeout=60).stdout
    assert "dashboard" in help_text
