"""Drawing a run's plots: links' rates and drops, groups' counters, phases shaded.

Each function takes one run -- or two, overlaid, for `seer report
--compare` -- and returns a matplotlib Figure; :func:`save` writes it as
PNG and SVG.  The only module of SEER that imports matplotlib, and only
`seer report` imports it (a `seer run` starts `seer report` as a process
of its own): the client's other commands stay light and the daemon and
the controller never load it (tests/test_layering.py, test_client_light.py).

Figures are made on the Agg canvas directly, never through pyplot: no GUI
backend is chosen, no global figure list grows, and a program that plots
with pyplot itself is left as it was.  The SVG keeps its text as text
(``svg.fonttype = none``), so a test -- or a search -- can read every
title, legend and phase name from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from seer.report.record import Phase, RunRecord, Series

#: Settings for every figure and file made here; applied around the work,
#: not globally, so a program that imports this module keeps its own.
STYLE = {
    "svg.fonttype": "none",       # text stays text in the SVG
    "svg.hashsalt": "seer",       # the same run gives the same SVG
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
#: One figure's size (inches) and the PNG's pixels per inch: 990 x 550.
SIZE, DPI = (9.0, 5.0), 110
#: Behind the data, one colour per phase in turn.
PHASE_COLOURS = ("#dfe9f5", "#f9dcd0", "#dcefd5", "#eee0f2", "#fbf0c8", "#d7eeee")
#: The two runs of a comparison: (colour, line style).
RUN_STYLES = (("#1f5fa8", "-"), ("#d9541e", "--"))
X_LABEL = "seconds since the run started"


def _rate_scale(peak: float) -> tuple[float, str]:
    for factor, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if peak >= factor:
            return factor, unit
    return 1.0, "bit/s"


def _scaled(series: Series, factor: float) -> list[float]:
    return [v / factor for v in series.values]


def shade_phases(ax: Axes, phases: Iterable[Phase], *, labels: bool = True,
                 panel: int = 0) -> None:
    """Shade each phase behind the data; name it at the top of the panel.
    The shading's SVG ids (``phase-shade-PANEL-I``, ``phase-label-I``) let
    a reader of the SVG find each phase's parts."""
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for i, phase in enumerate(phases):
        span = ax.axvspan(phase.start, phase.end, color=PHASE_COLOURS[i % len(PHASE_COLOURS)],
                          zorder=0, linewidth=0)
        span.set_gid(f"phase-shade-{panel}-{i}")
        if labels:
            name = phase.name + (" (not ended)" if phase.open else "")
            ax.text((phase.start + phase.end) / 2, 0.97, name, transform=top, ha="center",
                    va="top", fontsize=8.5, color="#333333", zorder=5, gid=f"phase-label-{i}",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.7,
                          "linewidth": 0})


def mark_phases(ax: Axes, phases: Iterable[Phase], colour: str, *, labels: bool) -> None:
    """The second run's phases, over the first's shading: their bounds, dashed."""
    bottom = blended_transform_factory(ax.transData, ax.transAxes)
    for phase in phases:
        for x in (phase.start, phase.end):
            ax.axvline(x, color=colour, linestyle=":", linewidth=1, zorder=1)
        if labels:
            ax.text(phase.start, 0.02, f" {phase.name}", transform=bottom, ha="left",
                    va="bottom", fontsize=7.5, color=colour, zorder=5)


def _phases(axes: list[Axes], runs: list[RunRecord]) -> None:
    for i, ax in enumerate(axes):
        shade_phases(ax, runs[0].phases, labels=i == 0, panel=i)
        if len(runs) > 1:
            mark_phases(ax, runs[1].phases, RUN_STYLES[1][0], labels=i == len(axes) - 1)


def _new_figure(rows: int, title: str) -> tuple[Figure, list[Axes]]:
    height = SIZE[1] if rows <= 2 else 1.2 + 1.6 * rows
    fig = Figure(figsize=(SIZE[0], height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0])
    fig.suptitle(title, fontsize=11)
    axes[-1].set_xlabel(X_LABEL)
    return fig, axes


def _finish(axes: list[Axes], runs: list[RunRecord]) -> None:
    end = max(max(r.duration for r in runs), 1.0)
    for ax in axes:
        ax.set_xlim(0, end)
        ax.set_ylim(bottom=0)
    _phases(axes, runs)


def _line(ax: Axes, series: Series | None, factor: float, label: str | None, colour: str,
          style: str | tuple = "-") -> None:
    if series is not None and series.times:
        ax.plot(series.times, _scaled(series, factor), label=label, color=colour,
                linestyle=style, linewidth=1.4, zorder=3)


def _label(runs: list[RunRecord], i: int, what: str) -> str:
    return f"{what} ({runs[i].label})" if len(runs) > 1 else what


def _legend(fig: Figure, axes: list[Axes] | None = None) -> None:
    """The legend under the plots, outside them: inside, it would hide a
    phase's name or the data, wherever it went."""
    handles, labels = [], []
    for ax in axes if axes is not None else fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
                   fontsize=8, frameon=False)


def link_figure(runs: list[RunRecord], link: str) -> Figure:
    """One link: its rate (and shaping rate) above, its drops below."""
    with matplotlib.rc_context(STYLE):
        title = f"link {link}: rate and drops" + (
            f" -- {runs[0].label} vs {runs[1].label}" if len(runs) > 1 else "")
        fig, (rate_ax, drop_ax) = _new_figure(2, title)
        peak = max((s.peak() for r in runs if (s := r.get("links", link, "bps"))),
                   default=0.0)
        factor, unit = _rate_scale(peak)
        for i, run in enumerate(runs):
            colour, style = RUN_STYLES[i]
            _line(rate_ax, run.get("links", link, "bps"), factor, _label(runs, i, "rate"),
                  colour, style)
            capacity = run.get("links", link, "capacity_bps")
            if capacity is not None and capacity.peak() > 0:
                _line(rate_ax, capacity, factor, _label(runs, i, "shaped to"), "#777777",
                      (0, (4, 2)) if i == 0 else (0, (1, 2)))
            _line(drop_ax, run.get("links", link, "drops_ps"), 1.0,
                  _label(runs, i, "drops"), "#b3261e" if len(runs) == 1 else colour, style)
        rate_ax.set_ylabel(f"rate ({unit})")
        drop_ax.set_ylabel("drops (packets/s)")
        _finish([rate_ax, drop_ax], runs)
        if not any((s := r.get("links", link, "drops_ps")) and s.peak() > 0 for r in runs):
            # Said, not left to an axis of 0 to 0.05 that reads like a scale.
            drop_ax.set_ylim(0, 1)
            drop_ax.text(0.5, 0.5, "no drops", transform=drop_ax.transAxes, ha="center",
                         va="center", color="#555555", zorder=5)
        _legend(fig)
    return fig


def group_figure(runs: list[RunRecord], group: str) -> Figure:
    """One agent group: each of its main counters' rate, one panel each."""
    counters = list(dict.fromkeys(c for r in runs for c in r.main_counters(group)))
    with matplotlib.rc_context(STYLE):
        title = f"agent group {group}" + (
            f" -- {runs[0].label} vs {runs[1].label}" if len(runs) > 1 else "")
        fig, axes = _new_figure(max(1, len(counters)), title)
        for ax, counter in zip(axes, counters, strict=False):
            totals = []
            for i, run in enumerate(runs):
                colour, style = RUN_STYLES[i]
                _line(ax, run.get("groups", group, f"rates.{counter}"), 1.0,
                      _label(runs, i, f"{counter} per second"), colour, style)
                total = run.final("groups", group, f"counters.{counter}")
                if total is not None:
                    totals.append(f"{total:,.0f}")
            ax.set_ylabel("per second")
            ax.set_title(f"{counter}: {' vs '.join(totals) or '-'} in all", fontsize=9,
                         loc="left")
        _finish(axes, runs)
        if len(runs) > 1:
            _legend(fig)
    return fig


def overview_figure(runs: list[RunRecord], links: list[str]) -> Figure:
    """Every link that carried traffic, together: rates above, drops below."""
    with matplotlib.rc_context(STYLE):
        title = "links that carried traffic: rate and drops" + (
            f" -- {runs[0].label} (solid) vs {runs[1].label} (dashed)" if len(runs) > 1
            else "")
        fig, (rate_ax, drop_ax) = _new_figure(2, title)
        peak = max((s.peak() for r in runs for n in links if (s := r.get("links", n, "bps"))),
                   default=0.0)
        factor, unit = _rate_scale(peak)
        colours = matplotlib.colormaps["tab10"].colors
        for j, link in enumerate(links):
            colour = colours[j % len(colours)]
            for i, run in enumerate(runs):
                style = RUN_STYLES[i][1]
                label = link if i == 0 else None
                _line(rate_ax, run.get("links", link, "bps"), factor, label, colour, style)
                _line(drop_ax, run.get("links", link, "drops_ps"), 1.0, label, colour, style)
                capacity = run.get("links", link, "capacity_bps")
                if i == 0 and capacity is not None and capacity.peak() > 0:
                    rate_ax.plot(capacity.times, _scaled(capacity, factor), color=colour,
                                 linestyle=(0, (4, 2)), linewidth=0.9, alpha=0.8, zorder=2,
                                 label=f"{link} shaped to")
        rate_ax.set_ylabel(f"rate ({unit})")
        drop_ax.set_ylabel("drops (packets/s)")
        _finish([rate_ax, drop_ax], runs)
        if links:
            _legend(fig, [rate_ax])
    return fig


def save(fig: Figure, stem: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``fig`` as STEM.png and STEM.svg (or ``formats``); the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(STYLE):
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            # No date or software version in the files: the same run makes
            # the same bytes, and a picture committed to docs/ changes only
            # when what it shows does.
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
            paths.append(path)
            # The layout is made: the other formats keep it (it was half the
            # time of a report), and every format has the same.
            fig.set_layout_engine("none")
    return paths
