"""Figure 3: learning curves of the selected runs, in the paper's layout.

Columns are data sets; top row NLL against updates, bottom row against wall-clock seconds;
log-scale y; one colour per unit, solid = validation, dashed = training NLL, from epoch 1.
The run plotted per (data set, unit) is the seed-1 run of the selected learning rate.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

from gru_repro.atomic import atomic_path  # noqa: E402
from gru_repro.reports.collect import ExperimentResult, Run  # noqa: E402
from gru_repro.reports.protocol import EXPERIMENTS, SEARCH_SEED  # noqa: E402
from gru_repro.reports.table2 import UNIT_LABELS  # noqa: E402

FIGURE3_MAIN = ("music/nottingham", "music/musedata", "speech/a", "speech/b")  # as in the paper
FIGURE3_MORE = ("music/jsb", "music/piano_midi")
UNIT_COLORS = {"tanh": "tab:blue", "gru": "tab:red", "lstm": "tab:green"}
X_AXES = (("updates", "updates"), ("wall_seconds", "wall-clock seconds"))


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


def _draw_column(axes_col, exp: ExperimentResult | None, name: str) -> None:
    title = exp.plan.label if exp is not None else EXPERIMENTS.get(name, name)
    empty_text = "no finished runs" if exp is not None else "not in this protocol"
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
            ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes)
        for unit, run in runs.items():
            rows = curves[unit]
            color = UNIT_COLORS.get(unit)
            label = f"{UNIT_LABELS.get(unit, unit)} (lr {run.get('lr'):.3g})"
            ax.plot(*_points(rows, x_key, "valid_nll"), color=color, label=f"{label} valid")
            ax.plot(
                *_points(rows, x_key, "train_nll"),
                color=color,
                ls="--",
                label=f"{UNIT_LABELS.get(unit, unit)} train",
            )
        if log_y:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())  # 4, 5 rather than 4x10^0
            ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.set_xlabel(x_label)
        ax.grid(True, which="both", alpha=0.3)
        if row_index == 0:
            ax.set_title(title if log_y or not runs else f"{title} (linear y: NLL ≤ 0)")
            if runs:
                ax.legend(fontsize=7)
    axes_col[0].set_ylabel("NLL (nats / step)")
    axes_col[1].set_ylabel("NLL (nats / step)")


def draw_figure3(experiments: list[ExperimentResult], columns: tuple[str, ...], path: Path) -> Path:
    """Write one figure with a column per experiment in `columns` (absent ones are labelled)."""
    by_name = {e.plan.experiment: e for e in experiments}
    fig, axes = plt.subplots(2, len(columns), figsize=(4.2 * len(columns), 7), squeeze=False)
    for col, name in enumerate(columns):
        _draw_column(axes[:, col], by_name.get(name), name)
    fig.suptitle("Learning curves of the selected runs (solid: valid, dashed: train)")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path
