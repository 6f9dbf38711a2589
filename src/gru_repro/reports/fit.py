"""How far each protocol fits the training set (results/fit.md): beside the paper's training NLL,
the selected run's, and the lowest any candidate of the search reached at any epoch.

Why: on several music cells the paper's training NLL lies far below ours while its test NLL lies
above, as for models that fit the training set much further and overfit. Table 2 shows the
kept checkpoint only; this report says whether any learning rate of the search, at any epoch of
its budget, reached the paper's training NLL, and what its validation NLL was then.

The "lowest over training" value is curves.csv's `train_nll`: each epoch's mean training NLL over
its updates, at the noisy weights those updates saw (frame-weighted), not the clean evaluation
of Table 2's train column; weight noise makes it the higher of the two at a given checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gru_repro.reports.collect import Run, SweepResults
from gru_repro.reports.paper import NOT_COMPARABLE, paper_nll
from gru_repro.reports.protocol import SEARCH_SEED, protocol_title
from gru_repro.reports.table2 import UNIT_LABELS


@dataclass
class FitRow:
    label: str  # the data set
    unit: str
    paper_train: float | None
    selected_train: float  # the selected candidate's seed-1 run, clean, at its kept checkpoint
    selected_epoch: float
    lowest_train: float  # the lowest epoch-mean training NLL of any search run
    lowest_lr: float | None
    lowest_epoch: float
    valid_then: float  # that run's validation NLL at that epoch
    best_valid: float  # that run's best validation NLL over its budget


def _lowest_train(run: Run) -> tuple[float, float, float]:
    """(lowest epoch-mean train NLL, its epoch, the validation NLL then) over the run's
    curves, epoch 0 (the untrained model) left out; NaNs when it has no such epoch."""
    rows = [r for r in run.curves if r["epoch"] > 0 and math.isfinite(r.get("train_nll", math.nan))]
    if not rows:
        return math.nan, math.nan, math.nan
    row = min(rows, key=lambda r: r["train_nll"])
    return row["train_nll"], row["epoch"], row.get("valid_nll", math.nan)


def fit_rows(results: SweepResults) -> list[FitRow]:
    """One row per music cell (data sets whose paper numbers are not comparable left out)."""
    rows = []
    for experiment in results.experiments:
        if experiment.plan.reports_as in NOT_COMPARABLE:
            continue
        for unit, result in experiment.units.items():
            lowest = (math.nan, math.nan, math.nan, None, math.nan)
            for lr, run in sorted(result.candidates.items()):
                if run is None or not run.finished:
                    continue
                train, epoch, valid = _lowest_train(run)
                if math.isfinite(train) and not train >= lowest[0]:
                    lowest = (train, epoch, valid, lr, run.get("best_valid_nll_seen"))
            selected = result.seed_runs.get(SEARCH_SEED)
            rows.append(
                FitRow(
                    label=experiment.plan.label,
                    unit=unit,
                    paper_train=paper_nll(experiment.plan.reports_as, "train", unit),
                    selected_train=selected.get("train_nll") if selected else math.nan,
                    selected_epoch=selected.get("best_epoch") if selected else math.nan,
                    lowest_train=lowest[0],
                    lowest_lr=lowest[3],
                    lowest_epoch=lowest[1],
                    valid_then=lowest[2],
                    best_valid=lowest[4],
                )
            )
    return rows


def _num(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


def _epoch(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.0f}"


def fit_markdown(sections: list[tuple[SweepResults, list[FitRow]]]) -> str:
    """One table per protocol, music rows only (the paper's speech numbers are not comparable)."""
    lines = [
        "# How far the training set is fitted",
        "",
        "<!-- written by scripts/make_reports.py from the runs; do not edit by hand -->",
        "",
        "Per protocol and cell: the paper's training NLL; the selected learning rate's search run "
        "(seed 1) at its kept checkpoint (clean evaluation, as Table 2); and the lowest "
        "epoch-mean training NLL any candidate of the search reached at any epoch (curves.csv "
        "`train_nll`: the mean over the epoch's updates at their noisy weights), with its rate, "
        "its epoch, the validation NLL at that epoch and that run's best. Nats per predicted "
        "step, frame-weighted. A lowest value still above the paper's says that no rate of the "
        "search, at any point of its budget, fitted the training set as far as the paper's "
        "model.",
        "",
    ]
    for results, rows in sections:
        title = protocol_title(results.protocol.name)
        lines += [
            f"## Protocol `{results.protocol.name}`" + (f": {title}" if title else ""),
            "",
            "| data set | unit | train (paper) | selected: train | kept epoch | lowest train "
            "over training | its lr | epoch | valid then | its best valid |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            lines.append(
                f"| {row.label} | {UNIT_LABELS.get(row.unit, row.unit)} | "
                f"{_num(row.paper_train)} | {_num(row.selected_train)} | "
                f"{_epoch(row.selected_epoch)} | {_num(row.lowest_train)} | "
                f"{'–' if row.lowest_lr is None else f'{row.lowest_lr:g}'} | "
                f"{_epoch(row.lowest_epoch)} | {_num(row.valid_then)} | {_num(row.best_valid)} |"
            )
        if results.missing:
            lines += ["", f"Incomplete: {len(results.missing)} planned run(s) not finished yet."]
        lines.append("")
    return "\n".join(lines)
