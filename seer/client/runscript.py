"""`python -m seer.client.runscript SCRIPT [ARGS]`: how the controller runs an
experiment script (EXECUTE, `seer run`).

The script runs as ``__main__``, exactly as ``python SCRIPT ARGS`` would run
it, with two differences a user sees:

* Cancelling the run (Ctrl-C in `seer run`, or the client going away) sends
  the script SIGINT.  Python would print a KeyboardInterrupt traceback that
  says nothing but "you pressed Ctrl-C"; this prints one line instead, and
  the script still ends *by* SIGINT, so the run's exit says "signal 2" and
  `seer run` exits 130 as a shell would.
* A traceback of the script's own error starts at the script: the frames of
  this module and of runpy, which the script's author never wrote, are left
  out.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import traceback
from types import TracebackType


def main(argv: list[str]) -> int:
    """Run ``argv[0]`` with ``argv[1:]`` as its arguments; its exit code."""
    if not argv:
        print("usage: python -m seer.client.runscript SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    script = os.path.abspath(argv[0])
    sys.argv = list(argv)
    # As `python SCRIPT` does: the script's folder first on the path.
    sys.path[0] = os.path.dirname(script)
    try:
        runpy.run_path(script, run_name="__main__")
    except KeyboardInterrupt:
        print(f"{os.path.basename(script)}: interrupted (SIGINT); its agent groups are stopped",
              file=sys.stderr, flush=True)
        end_by_sigint()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 -- reported as Python would, then exit 1
        traceback.print_exception(type(error), error, from_script(error.__traceback__, script))
        return 1
    return 0


def from_script(tb: TracebackType | None, script: str) -> TracebackType | None:
    """The traceback from the script's first frame on (all of it if none is the script's)."""
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename != script:
        first = first.tb_next
    return first if first is not None else tb


def end_by_sigint() -> None:
    """Die of SIGINT, as an uncaught KeyboardInterrupt makes Python do."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
