"""`seer run SCRIPT`: run an experiment script on the controller, its output
here live, its results/ files saved locally, its exit code ours.

Ctrl-C asks the controller to stop the script (and the agent groups it
started); a second Ctrl-C leaves at once.  When the run's record has come
back, `seer report` draws it (report/ in --results), as a process of its
own: this command never loads matplotlib, and a report that cannot be made
never changes the run's exit code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from seer.cli.common import UsageError, client_flags


def cmd_run(args: argparse.Namespace) -> int:
    """Run a script on the controller; its output here, live; its results/ too."""
    from seer.client import Connection

    check_script_arguments(args)
    try:
        content = Path(args.script).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {args.script}: {e.strerror}") from None
    connection = Connection(args.controller, args.certs, args.identity)
    request_id = connection.send({"type": "EXECUTE", "name": Path(args.script).name,
                                  "args": args.args}, content)
    with RunView(args.quiet, Path(args.results)) as run:
        code = _follow(connection, request_id, run)
    if run.ended and run.record_arrived and not args.no_report:
        report_after_run(Path(args.results), args.quiet)
    return code


def _follow(connection: Any, request_id: Any, run: RunView) -> int:
    """Show the run's frames until it ends; its exit code."""
    cancelled = False
    while True:
        # The whole turn is guarded, not only the poll: Ctrl-C often lands
        # while an OUTPUT frame is being written, and must still cancel.
        try:
            frame = connection.poll(request_id, 1.0)
            if frame is not None:
                code = run.handle(frame)
                if code is not None:
                    return code
        except KeyboardInterrupt:
            if cancelled or run.run_id is None:
                print("\nseer run: leaving; the controller stops the script and its agents",
                      file=sys.stderr)
                return 130
            cancelled = True
            print("\nseer run: stopping the script (Ctrl-C again to leave at once)...",
                  file=sys.stderr)
            connection.send({"type": "CANCEL", "run": run.run_id})


def check_script_arguments(args: argparse.Namespace) -> None:
    """Refuse seer's own options after SCRIPT unless `--` says they are the
    script's: `seer run SCRIPT --controller X` once ran SCRIPT on whichever
    testbed was up, handing it `--controller X`."""
    typed = getattr(args, "command_line", None)
    if typed is None:
        return
    tail = len(args.args)
    before = typed[:len(typed) - tail]
    if before[-2:] == [args.script, "--"]:
        return
    ambiguous = args.args[:args.args.index("--")] if "--" in args.args else args.args
    for word in ambiguous:
        option = seer_option(word, args.run_options)
        if option is not None:
            named = word if word.split("=", 1)[0] == option else f"{word} ({option})"
            raise UsageError(
                f"{named} after the script would be the script's argument, not seer run's "
                f"option: put seer's options before the script (seer run {option} ... "
                f"{args.script}), or `--` before the script's own (seer run {args.script} "
                f"-- {word} ...)")


def seer_option(word: str, options: frozenset[str]) -> str | None:
    """The seer run option ``word`` names (as argparse would read it), if any."""
    if not word.startswith("-") or word in ("-h", "--help"):
        return None
    name = word.split("=", 1)[0]
    if name in options:
        return name
    if name.startswith("--") and len(name) > 2:
        # argparse takes unambiguous abbreviations (--cont for --controller).
        matches = [o for o in options if o.startswith(name)]
        if len(matches) == 1:
            return matches[0]
    if len(name) > 2 and not name.startswith("--") and name[:2] in options:
        return name[:2]  # -qfoo: the short flag and its value
    return None


#: Seconds a run's report may take (a long run's record is a few MB of CSV).
REPORT_TIMEOUT = 300.0


def report_after_run(results: Path, quiet: bool) -> None:
    """Draw the run whose record just came into ``results``: `seer report`
    in a process of its own, so that matplotlib is loaded there, not here."""
    command = [sys.executable, "-m", "seer", "report", str(results)]
    try:
        made = subprocess.run(command, capture_output=True, text=True, timeout=REPORT_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except KeyboardInterrupt:
        print(f"[seer run: no report (interrupted); `seer report {results}` makes it]",
              file=sys.stderr)
        return
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"[seer run: no report ({e}); `seer report {results}` makes it]", file=sys.stderr)
        return
    if made.returncode != 0:
        why = (made.stderr.strip().splitlines() or [f"exit code {made.returncode}"])[-1]
        print(f"[seer run: no report: {why.removeprefix('seer report: ')}]", file=sys.stderr)
    elif not quiet:
        print(f"[seer run: report in {made.stdout.strip()}]", file=sys.stderr)


class RunView:
    """What `seer run` shows and saves of a run's frames; its exit code at EXIT."""

    def __init__(self, quiet: bool, results: Path) -> None:
        from seer.client.files import ChunkWriter

        self.quiet = quiet
        self.results = results
        self.run_id = None
        #: The run's record (its stats.csv) came back: there is something to draw.
        self.record_arrived = False
        #: EXIT came: the run is over and all its files are here.
        self.ended = False
        self._files = ChunkWriter()

    def __enter__(self) -> RunView:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the files whose last chunk did not come."""
        self._files.close()

    def handle(self, frame: Any) -> int | None:
        """Show or save one frame; the exit code once the run is over, else None."""
        from seer.client import RequestRefused

        if frame.type == "ERROR":
            raise RequestRefused(frame.get("error"))
        if frame.type == "ACCEPTED":
            self.run_id = frame.get("run")
            if not self.quiet:
                print(f"[seer run {self.run_id} on the controller]", file=sys.stderr)
        elif frame.type == "OUTPUT":
            stream = sys.stdout if frame.get("stream") == "stdout" else sys.stderr
            stream.write(frame.get("data"))
            stream.flush()
        elif frame.type == "FILE":
            path = self.local_path(frame.get("name"))
            self._files.write(path, frame)
            if path == self.results / "stats.csv" and frame.get("last"):
                self.record_arrived = True
        elif frame.type == "EXIT":
            self.ended = True
            code, signum = frame.get("code") or 0, frame.get("signal")
            if not self.quiet:
                how = f"signal {signum}" if signum else f"exit code {code}"
                print(f"[seer run {self.run_id}: {how}]", file=sys.stderr)
            return 128 + signum if signum else code
        return None

    def local_path(self, name: str) -> Path:
        """Where a file the script left in its results/ goes: --results/NAME."""
        path = Path(name)
        return self.results / (path.relative_to("results") if path.parts[:1] == ("results",)
                               else path)


def define(name: str, p: argparse.ArgumentParser) -> None:
    """Give `seer run`'s parser its description, flags and handler."""
    p.description = ("Upload SCRIPT and run it on the controller as a Python process of its "
                     "own, with your identity; its output comes here live, its exit code is "
                     "this command's, and the files it leaves in results/ come back into "
                     "--results. Ctrl-C stops the script and the agent groups it started. "
                     "seer's options go before SCRIPT; after it, put `--` before arguments "
                     "that look like seer run's own (seer run exp.py -- --results x).")
    p.set_defaults(func=cmd_run)
    p.add_argument("script", help="the experiment script (Python)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.add_argument("--results", default="results", help="where its results go (default: results)")
    p.add_argument("--quiet", "-q", action="store_true", help="no [seer run ...] lines")
    p.add_argument("--no-report", action="store_true",
                   help="do not draw the run's report (`seer report RESULTS` draws it later)")
    client_flags(p)
    # --help after the script is the script's own: scripts have options too.
    p.set_defaults(run_options=frozenset(o for o in p._option_string_actions
                                         if o not in ("-h", "--help")))
