"""Errors that point the way: what a new user gets wrong, each said clearly,
with its exit code, nothing sent (fresh `seer` processes, no controller)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def seer(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    base = {k: v for k, v in os.environ.items()
            if k not in ("SEER_CONTROLLER", "SEER_TESTBED", "SEER_CERTS", "SEER_IDENTITY")}
    return subprocess.run([sys.executable, "-m", "seer", *args], capture_output=True,
                          text=True, timeout=60, env=dict(base, **(env or {})), cwd=cwd)


@pytest.fixture
def empty(tmp_path):
    """No testbed state, no certificates here."""
    return {"SEER_TESTBED_DIR": str(tmp_path / "testbeds")}


def running(tmp_path, *names: str) -> dict[str, str]:
    root = tmp_path / "testbeds"
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "testbed.json").write_text(json.dumps({
            "name": name, "up": True,
            "client": {"controller": "127.0.0.1:1", "certs": str(tmp_path), "identity": "x"}}))
    return {"SEER_TESTBED_DIR": str(root)}


def test_no_testbed_and_no_controller_says_so_and_exits_3(empty, tmp_path):
    for command in (["nodes"], ["agents"], ["start", "PING", "p"]):
        done = seer(*command, env=empty, cwd=tmp_path)
        assert done.returncode == 3, done.stderr
        assert "no testbed is running and no controller was named" in done.stderr
        assert "seer testbed up" in done.stderr and "--controller" in done.stderr


def test_several_testbeds_are_named_with_how_to_choose(tmp_path):
    done = seer("nodes", env=running(tmp_path, "alpha", "beta"), cwd=tmp_path)
    assert done.returncode == 3
    assert "several testbeds run here (alpha, beta)" in done.stderr
    assert "SEER_TESTBED=NAME or --testbed NAME" in done.stderr


def test_a_testbed_named_that_does_not_run_says_which_do(tmp_path):
    env = dict(running(tmp_path, "alpha"), SEER_TESTBED="zz")
    done = seer("nodes", env=env, cwd=tmp_path)
    assert done.returncode == 3
    assert "testbed 'zz' is not running (running here: alpha)" in done.stderr
    done = seer("nodes", "--testbed", "zz", env=running(tmp_path, "beta"), cwd=tmp_path)
    assert "testbed 'zz' is not running" in done.stderr


def test_a_controller_address_that_cannot_be_reached_is_the_connection_code(empty, certs_dir):
    for address in ("nohost", "nohost.invalid:7700"):
        done = seer("nodes", "--controller", address, "--certs", str(certs_dir),
                    "--identity", "alice", env=empty)
        assert done.returncode == 3, (address, done.stderr)


@pytest.mark.parametrize("value, shown", [("NaN", "x is NaN"), ("Infinity", "x is Infinity"),
                                          ("1e999", "x is Infinity"),
                                          ("[1,NaN]", "x[1] is NaN")])
def test_non_finite_values_are_refused_naming_them(empty, value, shown):
    done = seer("set", "PING", "p", f"x={value}", env=empty)
    assert done.returncode == 2 and shown in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("flag", ["--timeout", "--at", "--after"])
def test_non_finite_times_are_refused(empty, flag):
    done = seer("start", "PING", "p", flag, "nan", env=empty)
    assert done.returncode == 2 and "'nan' is not a finite number" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_python_api_refuses_non_finite_values_with_seers_error(tmp_path):
    from seer.client import RequestRefused
    from seer.client.connection import Connection

    connection = Connection.__new__(Connection)  # no controller needed: nothing is sent
    connection._ids = iter(range(1, 10))
    with pytest.raises(RequestRefused, match=r"vars.rate is NaN: SEER carries only finite"):
        connection.send({"type": "SET", "vars": {"rate": float("nan")}})


def test_put_of_a_missing_file_says_it_is_missing(empty, tmp_path):
    done = seer("put", str(tmp_path / "nonexistent"), env=empty)
    assert done.returncode == 2
    assert "nonexistent does not exist" in done.stderr and "Traceback" not in done.stderr


def test_errors_under_json_are_json_on_stdout_too(empty, tmp_path):
    done = seer("nodes", "--json", env=empty, cwd=tmp_path)
    answer = json.loads(done.stdout)
    assert answer["kind"] == "unreachable" and answer["exit"] == done.returncode == 3
    assert "no testbed is running" in answer["error"]


def test_server_commands_do_not_carry_the_clients_exit_codes_in_their_help():
    for command in ("controller", "daemon", "certs"):
        done = seer(command, "--help")
        assert "exit codes" not in done.stdout and "SEER_IDENTITY" not in done.stdout, command
    assert "exit codes" in seer("nodes", "--help").stdout


def test_a_default_is_said_once_in_help():
    done = seer("daemon", "--help")
    text = " ".join(done.stdout.split())
    assert "(default: the host name without its domain)" in text
    assert "(default: '')" not in text and "(default: [])" not in text
    assert "(default: '239.255.77.1:7701')" in text  # a real default still shown


def test_a_nested_result_renders_as_readable_rows_not_cut_json():
    from seer.cli.messages import print_result
    from seer.client import Outcome, Result
    import contextlib
    import io

    stats = {"counters": {"replies": 5}, "targets": {"server1": {
        "target": "server1", "sent": 5, "received": 5, "loss": 0.0, "rtt_min": 0.05,
        "rtt_avg": 0.07, "rtt_max": 0.1}}}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = print_result(Result("STATS PING p", 3, ["client1"],
                                   {"client1": Outcome("client1", "applied", result=stats)}),
                            as_json=False)
    text = out.getvalue()
    assert code == 0
    assert "client1  applied\n" in text
    assert "counters: replies=5" in text
    assert "targets.server1: target=server1 sent=5 received=5 loss=0.0 rtt_min=0.05 " \
           "rtt_avg=0.07 rtt_max=0.1" in text


@pytest.mark.parametrize("after", [["--controller", "127.0.0.1:9"], ["--cont=127.0.0.1:9"],
                                   ["one", "--results", "r"], ["-q"], ["--json"]])
def test_seer_options_after_the_script_are_refused_with_the_way_to_write_them(
        empty, tmp_path, after):
    script = tmp_path / "exp.py"
    script.write_text("print('ran')\n")
    done = seer("run", str(script), *after, env=empty, cwd=tmp_path)
    assert done.returncode == 2, done
    assert "after the script" in done.stderr
    assert f"seer run {script} -- " in done.stderr and "before the script" in done.stderr
    assert "ran" not in done.stdout


def test_after_double_dash_they_are_the_scripts_own(empty, tmp_path, certs_dir):
    """`--` says so: seer run goes on to the controller (unreachable here: exit 3)."""
    script = tmp_path / "exp.py"
    script.write_text("print('ran')\n")
    for after in (["--", "--results", "r"], ["one", "--two"], ["--help"], ["a", "--", "-q"]):
        done = seer("run", "--controller", "127.0.0.1:9", "--certs", str(certs_dir),
                    "--identity", "alice", str(script), *after, env=empty, cwd=tmp_path)
        assert done.returncode == 3, (after, done.stderr)
