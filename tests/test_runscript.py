"""seer.client.runscript, how the controller runs a script: as `python
SCRIPT ARGS` would, with one line for SIGINT and tracebacks that start at
the script (real processes)."""

from __future__ import annotations

import signal
import subprocess
import sys


def run(script, *args: str, **kwargs):
    return subprocess.Popen([sys.executable, "-u", "-m", "seer.client.runscript", str(script),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=script.parent, **kwargs)


def test_the_script_runs_as_main_with_its_arguments_and_its_folder_on_the_path(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 7\n")
    script = tmp_path / "exp.py"
    script.write_text("import sys, helper\nprint(__name__, sys.argv, helper.VALUE)\n"
                      "sys.exit(4)\n")
    out, err = run(script, "a", "--b").communicate(timeout=30)
    assert out.strip() == f"__main__ {[str(script), 'a', '--b']} 7", err


def test_an_error_is_a_traceback_from_the_script_on_and_exit_1(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text("def f():\n    raise ValueError('bad rate')\nf()\n")
    process = run(script)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    lines = err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert str(script) in lines[1] and "line 3" in lines[1], err
    assert lines[-1] == "ValueError: bad rate"
    assert "runpy" not in err and "runscript" not in err


def test_sigint_is_one_line_and_the_script_still_dies_of_it(tmp_path):
    script = tmp_path / "exp.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    process = run(script)
    assert process.stdout.readline().strip() == "up"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGINT
    assert err.strip() == "exp.py: interrupted (SIGINT); its agent groups are stopped"
