"""Figure 3: learning curves of the selected runs, in the paper's layout.

Columns are data sets, only those the protocol ran; top row NLL against updates, bottom row
against wall-clock seconds; log-scale y (linear when an NLL is <= 0); one colour per unit,
solid = validation, dashed = training NLL, from epoch 1. The run plotted per (data set, unit)
is the seed-1 run of the selected learning rate. One legend below the axes and a caption saying
how each line was measured (`figure3_caption`).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    StrMethodFormatter,
)

from gru_repro.atomic import atomic_path  # noqa: E402
from gru_repro.reports.collect import ExperimentResult, Run  # noqa: E402
from gru_repro.reports.figure3_caption import caption, train_legend  # noqa: E402
from gru_repro.reports.protocol import EXPERIMENTS, SEARCH_SEED  # noqa: E402
from gru_repro.reports.table2 import UNIT_LABELS  # noqa: E402

FIGURE3_MAIN = ("music/nottingham", "music/musedata", "speech/a", "speech/b")  # as in the paper
FIGURE3_MORE = ("music/jsb", "music/piano_midi")
UNIT_COLORS = {"tanh": "tab:blue", "gru": "tab:red", "lstm": "tab:green"}
X_AXES = (("updates", "updates"), ("wall_seconds", "wall-clock seconds"))
# Round mantissas for log-axis ticks, sparsest first: the densest set giving at most
# MAX_LOG_TICKS labels in the axis range is used, so a range within one decade (3.5 to 15)
# still gets labels on both sides of 10.
LOG_MANTISSAS = ((1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0))
LOG_MANTISSAS += ((1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0),)
MAX_LOG_TICKS = 8
COLUMN_WIDTH, ROW_HEIGHT, MIN_WIDTH = 4.4, 3.2, 6.0  # inches: a panel, the whole figure
TOP_INCHES, LEGEND_ROW_INCHES = 0.4, 0.3  # the suptitle; one row of the legend
CAPTION_CHARS_PER_INCH, CAPTION_LINE_INCHES = 15, 0.15  # the caption's 8 pt text, wrapped


def representative_run(exp: ExperimentResult, unit: str) -> Run | None:
    result = exp.units[unit]
    run = result.seed_runs.get(SEARCH_SEED)
    return run if run is not None and _trained_rows(run) else None


def _trained_rows(run: Run) -> list[dict[str, float]]:
    """Curve rows after the first epoch: the untrained model's row (epoch 0, ~60 nats on music)
    would squash the interesting range of the log axis."""
    return [row for row in run.curves if row["epoch"] >= 1]


def _points(rows: list[dict[str, float]], x_key: str, y_key: str) -> tuple[list, list]:
    """(x, y) of the rows with a finite y: epochs without validation (trainer.eval_every > 1)
    have a NaN valid_nll, and a NaN would break the line into invisible single points."""
    pairs = [(row[x_key], row[y_key]) for row in rows if math.isfinite(row[y_key])]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _in_range(locator, low: float, high: float) -> int:
    return sum(low <= t <= high for t in locator.tick_values(low, high))


def log_axis_locator(low: float, high: float):
    """Ticks at round numbers for a log axis from `low` to `high`: the densest of
    LOG_MANTISSAS x 10^k with at most MAX_LOG_TICKS in range; a range too narrow for three of
    them (within a factor of ~1.5) gets linear round numbers instead."""
    chosen = LogLocator(base=10, subs=LOG_MANTISSAS[0])
    for subs in LOG_MANTISSAS:
        locator = LogLocator(base=10, subs=subs)
        if _in_range(locator, low, high) > MAX_LOG_TICKS:
            break
        chosen = locator
    if _in_range(chosen, low, high) < 3:
        return MaxNLocator(nbins=5)
    return chosen


def _style_y(ax, log_y: bool) -> None:
    if not log_y:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        return
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(log_axis_locator(*ax.get_ylim()))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 15, not 1.5x10^1
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs="all"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _y_label(name: str, log_y: bool) -> str:
    if name.startswith("speech/"):  # the caption says why it can be negative
        return "NLL per frame, nats" + ("\n(below 0: a density, see caption)" if not log_y else "")
    return "NLL per time step, nats" + (" (log scale)" if log_y else "")


def _draw_column(axes_col, exp: ExperimentResult | None, name: str) -> list[Run]:
    """Draw one data set into its two axes; returns the runs plotted (for the caption)."""
    title = exp.plan.label if exp is not None else EXPERIMENTS.get(name, name)
    runs = {u: representative_run(exp, u) for u in exp.units} if exp is not None else {}
    runs = {u: r for u, r in runs.items() if r is not None}
    curves = {u: _trained_rows(r) for u, r in runs.items()}
    values = [
        row[k] for rows in curves.values() for row in rows for k in ("train_nll", "valid_nll")
    ]
    finite = [v for v in values if math.isfinite(v)]
    log_y = bool(finite) and min(finite) > 0  # Gaussian-mixture NLL can be negative: then linear
    for row_index, (x_key, x_label) in enumerate(X_AXES):
        ax = axes_col[row_index]
        if not runs:
            ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
        for unit, rows in curves.items():  # labels for tests and tools; the legend is the figure's
            color = UNIT_COLORS.get(unit)
            ax.plot(*_points(rows, x_key, "valid_nll"), color=color, label=f"{unit} valid")
            ax.plot(*_points(rows, x_key, "train_nll"), color=color, ls="--", label=f"{unit} train")
        _style_y(ax, log_y)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))  # 17,500
        ax.set_xlabel(x_label)
        ax.set_ylabel(_y_label(name, log_y))
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    lrs = ", ".join(f"{UNIT_LABELS.get(u, u)} {r.get('lr'):.3g}" for u, r in runs.items())
    axes_col[0].set_title(f"{title}\nlr: {lrs}" if lrs else title, fontsize=10)
    return list(runs.values())


def _legend_handles(units: list[str], train_label: str) -> list[Line2D]:
    handles = [
        Line2D([], [], color=UNIT_COLORS.get(u), lw=2, label=UNIT_LABELS.get(u, u)) for u in units
    ]
    return handles + [
        Line2D([], [], color="0.2", label="validation NLL"),
        Line2D([], [], color="0.2", ls="--", label=train_label),
    ]


def build_figure3(experiments: list[ExperimentResult], columns: tuple[str, ...]) -> Figure | None:
    """A figure with a column per experiment of `columns` that the results have; None when the
    results have none of them (the protocol did not run those data sets)."""
    by_name = {e.plan.reports_as: e for e in experiments}
    present = [name for name in columns if name in by_name]
    if not present:
        return None
    width = max(COLUMN_WIDTH * len(present), MIN_WIDTH)
    fig, axes = plt.subplots(2, len(present), figsize=(width, 2 * ROW_HEIGHT), squeeze=False)
    plotted = []
    for col, name in enumerate(present):
        runs = _draw_column(axes[:, col], by_name[name], name)
        plotted.append((by_name[name].plan.label, runs))
    densities = [by_name[n].plan.label for n in present if n.startswith("speech/")]
    units = list(dict.fromkeys(u for e in by_name.values() for u in e.units))
    handles = _legend_handles(units, train_legend(r for _, runs in plotted for r in runs))
    legend_rows = 1 if width >= 2 * COLUMN_WIDTH else 2
    text = textwrap.fill(caption(plotted, densities), width=int(CAPTION_CHARS_PER_INCH * width))
    caption_inches = CAPTION_LINE_INCHES * (text.count("\n") + 1)
    bottom_inches = 0.1 + caption_inches + LEGEND_ROW_INCHES * legend_rows
    height = 2 * ROW_HEIGHT + TOP_INCHES + bottom_inches
    fig.set_figheight(height)
    fig.suptitle("Figure 3: learning curves of the selected runs")
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=math.ceil(len(handles) / legend_rows),
        frameon=False,
        bbox_to_anchor=(0.5, (0.1 + caption_inches) / height),
    )
    fig.text(0.5, 0.08 / height, text, ha="center", va="bottom", fontsize=8)
    fig.tight_layout(rect=(0, bottom_inches / height, 1, 1))
    return fig


def draw_figure3(
    experiments: list[ExperimentResult], columns: tuple[str, ...], path: Path
) -> Path | None:
    """Write build_figure3's figure to `path`; None (and no file, an older one removed) when the
    results have none of `columns`."""
    fig = build_figure3(experiments, columns)
    if fig is None:
        Path(path).unlink(missing_ok=True)
        return None
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path
