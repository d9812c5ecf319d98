"""The `seer` processes refuse bad set-up at once, with a message saying why."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def seer(*args, cwd=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_help_explains_every_command():
    run = seer("--help")
    assert run.returncode == 0
    for command in ("controller", "daemon", "certs", "nodes", "agents", "set", "start",
                    "stop", "command", "status"):
        assert command in run.stdout
    assert "exit codes" in run.stdout
    run = seer("set", "--help")
    assert "VAR@NODE=VALUE" in run.stdout and "--target" in run.stdout


def test_controller_with_an_unknown_config_key_stops_with_a_clear_error(tmp_path):
    (tmp_path / "c.toml").write_text('ping_intervall = 1\n')
    run = seer("controller", "--config", str(tmp_path / "c.toml"))
    assert run.returncode == 2
    assert "unknown setting(s) ping_intervall" in run.stderr


def test_controller_without_certificates_says_how_to_make_them(tmp_path):
    run = seer("controller", "--certs", str(tmp_path / "none"), "--state-dir", str(tmp_path / "s"))
    assert run.returncode == 1
    assert "seer certs init" in run.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_controller_on_a_busy_port_says_so(tmp_path, certs_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = seer("controller", "--certs", str(certs_dir), "--state-dir", str(tmp_path / "s"),
                   "--listen", f"127.0.0.1:{port}", "--group", "239.255.9.9:47001")
    assert run.returncode == 1
    assert "could not start" in run.stderr and "Address already in use" in run.stderr


def test_daemon_on_an_unknown_interface_says_so(certs_dir):
    run = seer("daemon", "--name", "n1", "--certs", str(certs_dir), "--interface", "nosuch0")
    assert run.returncode == 1
    assert "interface 'nosuch0' has no IPv4 address here" in run.stderr


def test_daemon_refuses_a_unicast_group(certs_dir):
    run = seer("daemon", "--name", "n1", "--certs", str(certs_dir), "--group", "10.0.0.1:7701")
    assert run.returncode == 1
    assert "not an IPv4 multicast address" in run.stderr


def test_client_without_a_controller_exits_3(certs_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = seer("nodes", "--controller", f"127.0.0.1:{port}", "--certs", str(certs_dir),
               "--identity", "alice")
    assert run.returncode == 3 and "is `seer controller` running there?" in run.stderr


def test_client_without_certificates_exits_2():
    run = seer("nodes", "--certs", "/nonexistent")
    assert run.returncode == 2 and "no experimenter certificate" in run.stderr


def test_certs_init_writes_private_keys(tmp_path):
    run = seer("certs", "init", "--dir", str(tmp_path / "c"), "--count", "3", "--experimenter", "eve")
    assert run.returncode == 0, run.stderr
    key = tmp_path / "c" / "nodes" / "node3.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "c" / "experimenters" / "eve.pem").exists()
    run = seer("certs", "init", "--dir", str(tmp_path / "c"), "--nodes", "bad.name")
    assert run.returncode == 2 and "not a valid node name" in run.stderr


def test_controller_with_a_bad_node_file_says_which_name(tmp_path, certs_dir):
    (tmp_path / "nodes.txt").write_text("client1\nbad.name\n")
    run = seer("controller", "--certs", str(certs_dir), "--state-dir", str(tmp_path / "s"),
               "--nodefile", str(tmp_path / "nodes.txt"))
    assert run.returncode == 2
    assert "'bad.name' is not a valid node name" in run.stderr and "Traceback" not in run.stderr


def test_testbed_without_root_says_so_plainly(monkeypatch):
    from seer.testbed import netns

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "needs root" in netns.can_build() and "loopback mode" in netns.can_build()


def test_seer_profile_writes_a_cprofile_of_the_run(tmp_path, certs_dir):
    import pstats
    import signal
    import time

    env = dict(os.environ, SEER_PROFILE=str(tmp_path / "controller.prof"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "seer", "controller", "--certs", str(certs_dir),
         "--state-dir", str(tmp_path / "s"), "--listen", "127.0.0.1:0",
         "--group", "239.255.9.9:47002"],
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while "listening for TLS" not in proc.stderr.readline():
            assert time.monotonic() < deadline and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.stderr.close()
    stats = pstats.Stats(str(tmp_path / f"controller.prof.{proc.pid}"))
    assert stats.total_calls > 0


def test_client_commands_against_a_controller_load_no_twisted_or_x509(tmp_path, certs_dir):
    # issue 17: a client command's time is its imports; the fresh process
    # that talks to a real controller must not load the Twisted/TLS stack.
    import json

    from e2e import lab_for

    probe = ("import json, sys; from seer.cli import main; "
             "codes = [main(argv) for argv in json.loads(sys.argv[1])]; "
             "print(json.dumps([codes, sorted(m for m in ('twisted', 'OpenSSL', "
             "'cryptography.x509') if m in sys.modules)]))")
    (tmp_path / "script.py").write_text("from seer.client import Experiment\n"
                                        "with Experiment() as exp:\n    print(len(exp.nodes()))\n")
    script = str(tmp_path / "script.py")
    command_lines = [
        ["nodes", "--wait", "n1", "n2"], ["agents"], ["status"], ["watch", "--once"],
        ["set", "RECORDER", "g", "label=x"], ["command", "RECORDER", "g", "RECORD", "i=1"],
        ["put", script], ["get", "files/script.py", "--into", str(tmp_path / "got")],
        ["run", "--quiet", script],
    ]
    with lab_for(tmp_path / "lab", certs_dir, 2) as lab:
        run = subprocess.run([sys.executable, "-c", probe, json.dumps(command_lines)],
                             capture_output=True, text=True, timeout=120, env=lab.env(),
                             cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    codes, loaded = json.loads(run.stdout.splitlines()[-1])
    assert codes == [0] * len(command_lines), run.stdout + run.stderr
    assert loaded == []
    assert (tmp_path / "got" / "n1" / "files" / "script.py").read_bytes() == \
        (tmp_path / "script.py").read_bytes()
