"""The report's HTML page: the run's summary beside its plots.

One self-contained file (its style inline, no script, nothing fetched) in
the report's folder, next to the plots it shows: every plot as its PNG,
linked to its SVG; the phase table; the outcome counts; every command
of the log; each group's final counters; links to the record's own CSV
files.  Everything the run's files say is escaped: a group or phase name
is text, never markup.
"""

from __future__ import annotations

import os
import time
from html import escape
from pathlib import Path
from typing import Any, Iterable, Sequence

from seer.report.record import IDLE_BPS, RunRecord

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1040px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 13px; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #ddd; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fde8e6; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; } .muted { color: #777; }
code { background: #f3f3f3; padding: 0 0.25em; }
"""


def _rel(path: Path, folder: Path) -> str:
    """A link from the page in ``folder`` to ``path``, relative where it can be."""
    try:
        return Path(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # another drive
        return path.resolve().as_uri()


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int],
           bad: Iterable[bool] = ()) -> str:
    bad = list(bad)
    head = "".join(f'<th class="n">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for j, row in enumerate(rows):
        cells = "".join(f'<td class="n">{escape(str(c))}</td>' if i in numeric
                        else f"<td>{escape(str(c))}</td>" for i, c in enumerate(row))
        css = ' class="bad"' if j < len(bad) and bad[j] else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _when(run: RunRecord) -> str:
    if not run.started:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(run.started))


def summary(run: RunRecord) -> str:
    """The run's facts, its outcome counts and its phase table."""
    totals = run.outcome_totals()
    idle = [n for n in run.links() if n not in run.carried_links()]
    facts = [
        ("started", _when(run)),
        ("lasted", f"{run.duration:.1f} s, {run.intervals} intervals recorded"),
        ("links", ", ".join(run.links()) or "none"),
        ("idle links (no plot)", ", ".join(idle) or "none"),
        ("nodes", ", ".join(run.names("nodes")) or "none"),
        ("agent groups", ", ".join(run.names("groups")) or "none"),
        ("commands", f"{totals['commands']}: nodes applied {totals['applied']}, failed "
                     f"{totals['failed']}, skipped {totals['skipped']}, unconfirmed "
                     f"{totals['unconfirmed']}"),
    ]
    parts = ["<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                 for k, v in facts) + "</table>"]
    if idle:
        parts.append(f'<p class="muted">A link is idle when its rate never reached '
                     f"{IDLE_BPS:g} bit/s.</p>")
    parts.append("<h2>Phases</h2>")
    if run.phases:
        parts.append(_table(
            ("phase", "from (s)", "to (s)", "lasted (s)"),
            ((p.name + (" (not ended: the record's end)" if p.open else ""), f"{p.start:.1f}",
              f"{p.end:.1f}", f"{p.end - p.start:.1f}") for p in run.phases), {1, 2, 3}))
    else:
        parts.append('<p class="muted">The script marked no phases (<code>exp.mark("during")'
                     "</code> marks one).</p>")
    return "\n".join(parts)


def commands_table(run: RunRecord) -> str:
    if not run.commands:
        return '<p class="muted">No command finished during the run.</p>'
    rows = [(f"{c.elapsed:.2f}", c.what, c.target, c.nodes, c.applied, c.failed, c.skipped,
             c.unconfirmed, c.first_error) for c in run.commands]
    return _table(("at (s)", "command", "target", "nodes", "applied", "failed", "skipped",
                   "unconfirmed", "first error"), rows, {0, 3, 4, 5, 6, 7},
                  (c.failed or c.unconfirmed for c in run.commands))


def counters_table(run: RunRecord) -> str:
    rows = []
    for group in run.names("groups"):
        for counter in run.counters(group):
            total = run.final("groups", group, f"counters.{counter}")
            if total:
                rows.append((group, counter, f"{total:,.0f}"))
    if not rows:
        return '<p class="muted">No agent group counted anything.</p>'
    return _table(("group", "counter", "at the end"), rows, {2})


def _figures(plots: Sequence[Any], folder: Path) -> str:
    if not plots:
        return ('<p class="muted">Nothing to plot: no interval of the record has a link that '
                "carried traffic or a group that counted.</p>")
    out = []
    for plot in plots:
        png = next((p for p in plot.files if p.suffix == ".png"), plot.files[0])
        links = " · ".join(f'<a href="{escape(_rel(p, folder))}">{p.suffix[1:].upper()}</a>'
                           for p in plot.files)
        out.append(f'<figure id="{escape(plot.key)}"><a href="{escape(_rel(png, folder))}">'
                   f'<img src="{escape(_rel(png, folder))}" alt="{escape(plot.title)}"></a>'
                   f"<figcaption>{escape(plot.title)} ({links}; "
                   f"<code>--plot {escape(plot.key)}</code>)</figcaption></figure>")
    return "\n".join(out)


def _files(runs: Sequence[RunRecord], folder: Path) -> str:
    items = []
    for run in runs:
        for path in (run.samples_file, run.commands_file, run.phases_file):
            if path is not None:
                items.append(f'<li><a href="{escape(_rel(path, folder))}">'
                             f"{escape(str(path))}</a></li>")
    return f"<ul>{''.join(items)}</ul>"


def write_page(folder: Path, runs: Sequence[RunRecord], plots: Sequence[Any]) -> Path:
    """Write ``folder``/index.html for one run, or two compared; its path."""
    if len(runs) == 1:
        run = runs[0]
        title = f"SEER run report: {run.label}"
        body = [f"<h1>{escape(title)}</h1>", "<h2>Summary</h2>", summary(run),
                "<h2>Plots</h2>", _figures(plots, folder),
                "<h2>Commands</h2>", commands_table(run),
                "<h2>Counters</h2>", counters_table(run)]
    else:
        title = f"SEER runs compared: {runs[0].label} and {runs[1].label}"
        body = [f"<h1>{escape(title)}</h1>",
                f'<p class="muted">{escape(runs[0].label)}: solid, its phases shaded; '
                f"{escape(runs[1].label)}: dashed, its phases' bounds dotted. Each run's "
                "clock starts at its own start.</p>", "<h2>Plots</h2>", _figures(plots, folder)]
        for run in runs:
            body += [f"<h2>{escape(run.label)}</h2>", summary(run),
                     "<h3>Commands</h3>", commands_table(run)]
    body += ["<h2>The record</h2>", _files(runs, folder),
             '<p class="muted">Made by <code>seer report</code>.</p>']
    page = folder / "index.html"
    page.write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
                    + "\n".join(body) + "\n</body></html>\n", encoding="utf-8")
    return page
