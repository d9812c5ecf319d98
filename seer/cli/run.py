"""`seer run SCRIPT`: run an experiment script on the controller, its output
here live, its results/ files saved locally, its exit code ours.

Ctrl-C asks the controller to stop the script (and the agent groups it
started); a second Ctrl-C leaves at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from seer.cli.common import UsageError, client_flags


def cmd_run(args: argparse.Namespace) -> int:
    """Run a script on the controller; its output here, live; its results/ too."""
    from seer.client import Connection

    try:
        content = Path(args.script).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {args.script}: {e.strerror}") from None
    connection = Connection(args.controller, args.certs, args.identity)
    request_id = connection.send({"type": "EXECUTE", "name": Path(args.script).name,
                                  "args": args.args}, content)
    with RunView(args.quiet, Path(args.results)) as run:
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


class RunView:
    """What `seer run` shows and saves of a run's frames; its exit code at EXIT."""

    def __init__(self, quiet: bool, results: Path) -> None:
        from seer.client.files import ChunkWriter

        self.quiet = quiet
        self.results = results
        self.run_id = None
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
            self._files.write(self.local_path(frame.get("name")), frame)
        elif frame.type == "EXIT":
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
                     "--results. Ctrl-C stops the script and the agent groups it started.")
    p.set_defaults(func=cmd_run)
    p.add_argument("script", help="the experiment script (Python)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.add_argument("--results", default="results", help="where its results go (default: results)")
    p.add_argument("--quiet", "-q", action="store_true", help="no [seer run ...] lines")
    client_flags(p)
