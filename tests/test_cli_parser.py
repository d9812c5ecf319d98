"""The `seer` parser: built for the command given, the same as built whole;
errors mapped to exit codes with one line on stderr."""

from __future__ import annotations

import argparse
import sys

import pytest

from seer.cli.entry import COMMANDS, build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _help_of(parser: argparse.ArgumentParser, path: list[str]) -> str:
    for name in path:
        parser = _subparsers(parser)[name]
    return parser.format_help()


def test_a_command_line_builds_only_its_command():
    assert list(_subparsers(build_parser(["nodes", "--json"]))) == ["nodes"]


def test_help_lists_every_command_in_the_table_order():
    parser = build_parser(["--help"])
    assert list(_subparsers(parser)) == list(COMMANDS)
    listing = parser.format_help()
    for name, (_, line) in COMMANDS.items():
        assert f"{name}" in listing and line in listing


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_built_alone_is_the_command_built_whole(name):
    whole = build_parser()
    alone = build_parser([name])
    assert _help_of(alone, [name]) == _help_of(whole, [name])
    assert alone.format_usage() == whole.format_usage()


def test_nested_actions_are_the_same_built_alone():
    whole = build_parser()
    for path in (["certs", "init"], ["testbed", "up"], ["testbed", "exec"]):
        assert _help_of(build_parser(path), path) == _help_of(whole, path)


@pytest.mark.parametrize("argv", [["-h", "nodes"], ["bogus"], []])
def test_an_option_or_unknown_word_first_lists_every_command(argv):
    assert list(_subparsers(build_parser(argv))) == list(COMMANDS)


def test_an_unknown_command_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bogus"])
    assert e.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_a_bad_assignment_exits_2_with_one_line(capsys):
    assert main(["set", "HTTP", "web1", "novalue"]) == 2
    assert capsys.readouterr().err == "seer set: 'novalue' is not VAR=VALUE\n"


def test_missing_certificates_exit_2(tmp_path, capsys):
    assert main(["nodes", "--certs", str(tmp_path / "none")]) == 2
    assert "no experimenter certificate" in capsys.readouterr().err


def test_a_failing_ip_command_of_the_testbed_exits_2(monkeypatch, capsys):
    from seer.testbed import cli as testbed_cli
    from seer.testbed.netns import ToolFailed

    def fail(args):
        raise ToolFailed(["ip", "netns", "list"], "permission denied")

    monkeypatch.setattr(testbed_cli, "cmd_status", fail)
    assert main(["testbed", "status"]) == 2
    assert "`ip netns list` failed: permission denied" in capsys.readouterr().err


def test_a_bug_is_not_dressed_up_as_a_user_error(monkeypatch):
    from seer.cli import info

    def broken(args):
        raise KeyError("oops")

    monkeypatch.setattr(info, "cmd_agents", broken)
    with pytest.raises(KeyError):
        main(["agents"])


def test_the_console_script_is_the_entry_modules_main():
    import seer.cli

    assert seer.cli.main is main


def test_python_dash_m_seer_cli_runs_the_command_line():
    import subprocess

    run = subprocess.run([sys.executable, "-m", "seer.cli", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("seer ")
