"""Making a report: which plots a run gets, where they go, and the page.

A run's report is a folder -- by default ``report/`` inside its results
folder, or ``<stem>-report/`` beside a `seer stats record` file -- with

    overview.png/.svg                every link that carried traffic, together
    link-<LINK>.png/.svg             each such link: rate (and shaping), drops
    group-<AGENT>-<GROUP>.png/.svg   each group that counted: its main counters
    index.html                       the page: summary, phases, plots, commands

the phases the script marked shaded on every plot.  A comparison of two
runs makes the same plots, each run's lines overlaid, by default in
``compare-<LABEL>/`` inside the first run's report folder.  A plot's key
(``overview``, ``links/LINK``, ``groups/AGENT/GROUP``) picks it alone
(:func:`one_plot`: the README's picture).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from seer.report import plots
from seer.report.page import write_page
from seer.report.record import RecordError, RunRecord, load

#: The plots of an earlier report in the same folder, replaced by this one's:
#: a link that carried traffic then and not now must not keep its old plot.
OURS = ("overview.png", "overview.svg", "link-*.png", "link-*.svg", "group-*.png", "group-*.svg")


@dataclass
class Plot:
    """One plot of a report: its key, what it shows, its files (PNG first)."""

    key: str
    title: str
    files: list[Path] = field(default_factory=list)


@dataclass
class Report:
    folder: Path
    page: Path
    plots: list[Plot]
    runs: list[RunRecord]


def _safe(name: str) -> str:
    """A file-name part for a link or group name: nothing but [A-Za-z0-9_.-]."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "unnamed"


def default_folder(run: RunRecord) -> Path:
    """Where a run's report goes unless told: report/ in its results folder,
    or <stem>-report/ beside a recorded file."""
    samples = run.samples_file
    if samples.name == "stats.csv":
        return samples.parent / "report"
    return samples.with_name(f"{samples.stem}-report")


def planned(runs: list[RunRecord]) -> list[tuple[str, str, str]]:
    """(key, title, file stem) of every plot the runs get, in the page's order."""
    links = list(dict.fromkeys(n for r in runs for n in r.carried_links()))
    groups = list(dict.fromkeys(g for r in runs for g in r.counting_groups()))
    out = []
    if len(links) > 1:  # with one link, the overview would be its plot again
        out.append(("overview", "every link that carried traffic: rate and drops", "overview"))
    out += [(f"links/{n}", f"link {n}: rate and drops", f"link-{_safe(n)}") for n in links]
    out += [(f"groups/{g}", f"agent group {g}: its main counters per second",
             f"group-{_safe(g)}") for g in groups]
    return out


def figure(runs: list[RunRecord], key: str) -> plots.Figure:
    """The figure of the plot ``key`` for these runs."""
    if key == "overview":
        links = list(dict.fromkeys(n for r in runs for n in r.carried_links()))
        return plots.overview_figure(runs, links)
    kind, _, name = key.partition("/")
    if kind == "links":
        return plots.link_figure(runs, name)
    if kind == "groups":
        return plots.group_figure(runs, name)
    raise RecordError(f"no plot {key!r}: a plot is overview, links/LINK or groups/AGENT/GROUP")


def _draw(runs: list[RunRecord], folder: Path) -> list[Plot]:
    folder.mkdir(parents=True, exist_ok=True)
    for pattern in OURS:
        for old in folder.glob(pattern):
            old.unlink()
    made = []
    for key, title, stem in planned(runs):
        fig = figure(runs, key)
        made.append(Plot(key, title, plots.save(fig, folder / stem)))
    return made


def make_report(run: str | Path | RunRecord, output: str | Path | None = None) -> Report:
    """The report of one run (a path or a record read already)."""
    record = run if isinstance(run, RunRecord) else load(run)
    folder = Path(output) if output is not None else default_folder(record)
    made = _draw([record], folder)
    return Report(folder, write_page(folder, [record], made), made, [record])


def make_comparison(first: str | Path | RunRecord, second: str | Path | RunRecord,
                    output: str | Path | None = None) -> Report:
    """Two runs of one experiment, overlaid on the same plots."""
    runs = [r if isinstance(r, RunRecord) else load(r) for r in (first, second)]
    if runs[0].label == runs[1].label:  # a legend that says "results vs results" says nothing
        runs[0].label, runs[1].label = f"{runs[0].label} (1)", f"{runs[1].label} (2)"
    folder = Path(output) if output is not None else \
        default_folder(runs[0]) / f"compare-{_safe(runs[1].label)}"
    made = _draw(runs, folder)
    return Report(folder, write_page(folder, runs, made), made, runs)


def one_plot(runs: list[RunRecord], key: str, output: str | Path) -> list[Path]:
    """Just the plot ``key``, into ``output``: FILE.png or FILE.svg, or both
    from a name without either suffix."""
    known = [k for k, _, _ in planned(runs)]
    if key not in known and not key.startswith(("links/", "groups/")):
        raise RecordError(f"no plot {key!r} in this report; its plots are "
                          f"{', '.join(known) or 'none'}")
    kind, _, name = key.partition("/")
    if kind in ("links", "groups") and name not in {n for r in runs for n in r.names(kind)}:
        raise RecordError(f"the record has no {kind[:-1]} {name!r}; its plots are "
                          f"{', '.join(known) or 'none'}")
    output = Path(output)
    if output.suffix in (".png", ".svg"):
        return plots.save(figure(runs, key), output.with_suffix(""), (output.suffix[1:],))
    return plots.save(figure(runs, key), output)
