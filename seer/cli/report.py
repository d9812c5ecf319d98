"""`seer report RUN`: a recorded run's plots and its HTML page.

    seer report results                      report/ in that results folder
    seer report run.csv                      a `seer stats record` file: run-report/
    seer report --compare results-a results-b   two runs overlaid
    seer report results --plot links/servers --output docs/img/demo-report.png

The only client command that loads matplotlib (seer/report/plots.py), and
only once the run's record has been found and read: a wrong path is said
at once.  `seer run` starts this command, as a process of its own, when a
run's results come back.
"""

from __future__ import annotations

import argparse
import json
import sys

from seer.cli.common import EXIT_OK, UsageError

NO_MATPLOTLIB = ("seer report draws with matplotlib, which is not installed here ({why}): "
                 "`pip install 'seer[report]'`, or `make setup` in SEER's folder")


def cmd_report(args: argparse.Namespace) -> int:
    from seer.report.record import RecordError, load

    if args.compare and len(args.runs) != 2:
        raise UsageError("--compare needs two runs: seer report --compare RUN1 RUN2")
    if not args.compare and len(args.runs) != 1:
        raise UsageError("give one run (or --compare RUN1 RUN2 to overlay two)")
    try:
        runs = [load(path) for path in args.runs]
        try:
            from seer.report import build
        except ImportError as e:
            raise UsageError(NO_MATPLOTLIB.format(why=e)) from None
        if args.plot:
            if args.output is None:
                raise UsageError("--plot needs --output FILE (.png, .svg, or a name for both)")
            files = build.one_plot(runs, args.plot, args.output)
            return _print(args, {"plot": args.plot, "files": [str(p) for p in files]},
                          "\n".join(map(str, files)))
        if args.compare:
            report = build.make_comparison(runs[0], runs[1], args.output)
        else:
            report = build.make_report(runs[0], args.output)
    except RecordError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write the report: {e}") from None
    summary = {"page": str(report.page), "folder": str(report.folder),
               "plots": [{"key": p.key, "title": p.title, "files": [str(f) for f in p.files]}
                         for p in report.plots],
               "phases": [p.name for p in report.runs[0].phases]}
    return _print(args, summary, f"{report.page} ({len(report.plots)} plots"
                  + (f"; phases {', '.join(summary['phases'])}" if summary["phases"] else "")
                  + ")")


def _print(args: argparse.Namespace, data: dict, text: str) -> int:
    if args.json:
        print(json.dumps(data, indent=2))
    elif not args.quiet:
        print(text)
    sys.stdout.flush()
    return EXIT_OK


def define(name: str, p: argparse.ArgumentParser) -> None:
    """Give `seer report`'s parser its description, flags and handler."""
    p.description = ("Plot a recorded run -- each link's rate and drops, each agent group's "
                     "main counters, the phases the script marked shaded -- as PNG and SVG, "
                     "with an HTML page of its summary (commands and outcome counts, phases). "
                     "RUN is a `seer run` results folder or a `seer stats record` file. "
                     "Exit codes: 0 made; 2 no run record there, or the command line is wrong.")
    p.set_defaults(func=cmd_report)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a results folder (stats.csv, commands.csv, phases.csv) or a "
                        "`seer stats record` file")
    p.add_argument("--compare", action="store_true",
                   help="overlay two runs of the same experiment: --compare RUN1 RUN2")
    p.add_argument("--output", "-o", metavar="PATH",
                   help="the report's folder (default: report/ in the results folder, or "
                        "STEM-report/ beside a record file); with --plot, the picture's file")
    p.add_argument("--plot", metavar="KEY",
                   help="only this plot, into --output: overview, links/LINK or "
                        "groups/AGENT/GROUP (the page names each plot's key)")
    p.add_argument("--json", action="store_true", help="print what was made as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")
