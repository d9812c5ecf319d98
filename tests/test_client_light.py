"""Client commands stay light: a fresh `seer` process running any client
command loads neither Twisted, nor pyOpenSSL, nor cryptography's x509
(issue 17: the CLI's time is its imports), nor orjson (the servers' JSON),
nor matplotlib (only `seer report` draws, and not before it has found the
run); and the client's
modules import nothing of the testbed, the backend or those libraries,
even inside a function."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
from pathlib import Path

import seer

HEAVY = ("twisted", "OpenSSL", "cryptography.x509", "matplotlib", "orjson")
SEER = Path(seer.__file__).resolve().parent

# Runs each command line in turn in one fresh interpreter and prints, after
# each, the heavy modules loaded by then: the first line naming one says
# which command pulled it in.
PROBE = """
import json, sys
from seer.cli import main
heavy = json.loads(sys.argv[1])
for argv in json.loads(sys.argv[2]):
    try:
        code = main(argv)
    except SystemExit as e:  # --help, argparse errors
        code = e.code
    print(json.dumps([argv, code, sorted(m for m in heavy if m in sys.modules)]), flush=True)
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loaded_after_each(command_lines: list[list[str]], cwd: Path) -> list[list]:
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY),
                          json.dumps(command_lines)],
                         capture_output=True, text=True, timeout=60, cwd=cwd)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("[[")]


def test_no_client_command_loads_twisted_pyopenssl_or_x509(tmp_path, certs_dir):
    script = tmp_path / "exp.py"
    script.write_text("print('hi')\n")
    flags = ["--controller", f"127.0.0.1:{_closed_port()}", "--certs", str(certs_dir),
             "--identity", "alice"]
    command_lines = [
        ["--help"], ["nodes", "--help"], ["set", "--help"],
        ["nodes", *flags], ["nodes", "--wait", *flags], ["agents", *flags], ["status", *flags],
        ["watch", "--once", *flags], ["set", "HTTP", "web1", "think=minmax(0.1,0.9)", *flags],
        ["start", "HTTP", "web1", *flags], ["stop", "HTTP", "web1", *flags],
        ["command", "HTTP", "web1", "STATS", *flags], ["put", str(script), *flags],
        ["get", "x.txt", *flags], ["run", *flags, str(script)],
        ["nodes", "--certs", str(tmp_path / "none")],
        ["report", "--help"], ["report", str(tmp_path / "no-such-run")],
    ]
    results = _loaded_after_each(command_lines, tmp_path)
    assert [argv for argv, _, _ in results] == command_lines
    for argv, code, loaded in results:
        assert loaded == [], f"`seer {' '.join(argv)}` loaded {', '.join(loaded)}"
    # Each got as far as it could: help printed (0), the controller tried
    # (3: nobody listens there), the missing certificates or run named (2).
    assert [code for _, code, _ in results] == [0] * 3 + [3] * 12 + [2] + [0, 2]


def test_the_probe_sees_a_command_that_loads_twisted(tmp_path):
    # The check above can fail: `seer controller` imports the Twisted
    # service before it reads (and here refuses) its settings file.
    results = _loaded_after_each([["controller", "--config", str(tmp_path / "none.toml")]],
                                 tmp_path)
    assert results[0][1] == 2
    assert "twisted" in results[0][2]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _forbidden(imports: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in imports if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_the_client_imports_nothing_of_the_testbed_backend_or_heavy_libraries():
    prefixes = ("seer.testbed", "seer.cli", "backend", "twisted", "OpenSSL", "cryptography",
                "matplotlib", "seer.report")
    for path in sorted((SEER / "client").glob("*.py")):
        bad = _forbidden(_imports(path), prefixes)
        assert not bad, f"{path.name} imports {', '.join(sorted(bad))}"


def test_only_the_service_runner_of_the_cli_touches_twisted():
    for path in sorted((SEER / "cli").glob("*.py")):
        bad = _forbidden(_imports(path), ("twisted",))
        if path.name == "services.py":
            assert bad == {"twisted.internet", "twisted.logger"}
        else:
            assert not bad, f"seer/cli/{path.name} imports {', '.join(sorted(bad))}"


def test_the_import_check_finds_a_planted_import(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def later():\n    from seer.testbed.state import read\n")
    assert _forbidden(_imports(planted), ("seer.testbed",)) == {"seer.testbed.state"}


def test_only_seer_report_reaches_matplotlib():
    # seer run draws its report through a child `seer report` process.
    for path in sorted((SEER / "cli").glob("*.py")):
        bad = _forbidden(_imports(path), ("matplotlib", "seer.report"))
        if path.name == "report.py":
            assert bad and "matplotlib" not in bad  # through seer.report, after the run is read
        else:
            assert not bad, f"seer/cli/{path.name} imports {', '.join(sorted(bad))}"
