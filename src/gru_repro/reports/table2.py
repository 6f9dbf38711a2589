"""Table 2's rows: train and test NLL of the selected runs under both conventions, mean ± std
over seeds, paper beside ours, and the budget the runs record (table2_markdown.py writes them)."""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import asdict, dataclass

from gru_repro.reports.collect import (
    GRID_EDGE_NOTE,
    STILL_IMPROVING_NOTE,
    Run,
    SweepResults,
    UnitResult,
)
from gru_repro.reports.paper import NOT_COMPARABLE, paper_nll
from gru_repro.reports.populations import run_share_seconds
from gru_repro.reports.training_settings import budget_settings

UNIT_LABELS = {"tanh": "tanh", "gru": "GRU", "lstm": "LSTM"}


@dataclass
class Table2Row:
    """One (experiment, unit) cell. Our NLLs under both conventions of metrics.json
    (gru_repro.training.metrics): `*_nll_*` frame-weighted (total NLL over all predicted
    frames, the runs' `nll_convention`), `*_nll_seqavg_*` sequence-averaged (the mean over
    sequences of each one's per-frame NLL). Each `*_diff` is ours - paper, nats; None where the
    data are not comparable. The budget columns are read from the runs, "; "-joined if the
    seed runs differ, "" when they do not record it."""

    experiment: str
    dataset: str
    unit: str
    selected_lr: float | None
    n_seeds: int
    train_nll_mean: float
    train_nll_std: float
    paper_train_nll: float | None
    train_diff: float | None  # ours - paper; None where the data are not comparable
    test_nll_mean: float
    test_nll_std: float
    paper_test_nll: float | None
    test_diff: float | None
    train_nll_seqavg_mean: float
    train_nll_seqavg_std: float
    train_seqavg_diff: float | None
    test_nll_seqavg_mean: float
    test_nll_seqavg_std: float
    test_seqavg_diff: float | None
    epochs_mean: float
    updates_mean: float
    wall_seconds_mean: float  # per seed run; a population member: its process's time / members
    batch_size: str  # sequences per update
    max_epochs: str  # the epoch budget
    early_stopping: str  # "patience <n> evaluations" or "none"
    grad_clip: str  # "global norm <c>" or "none"
    objective: str  # what the optimizer minimises, where the runs record it
    update_cap: str  # "norm <c>" or "none": the cap on each applied update's L2 norm
    weight_noise: str  # "std <s>, one draw per update|sequence" or "none"
    selection: str  # which validation NLL picks the kept checkpoint
    nll_convention: str
    note: str


# The two conventions Table 2 shows: name -> (metrics.json suffix, how the header defines it).
CONVENTIONS = {
    "frame-weighted": ("", "total NLL over all predicted frames of the split"),
    "sequence-averaged": ("_seqavg", "the mean over sequences of each sequence's per-frame NLL"),
}


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std


def _all_or_none(values: list[float]) -> tuple[float, float]:
    """Mean and std when every value is finite, else NaN: a mean over fewer seed runs than
    the frame-weighted one would not be the same cell under another convention."""
    if not values or not all(map(math.isfinite, values)):
        return math.nan, math.nan
    return _mean_std(values)


def _finished(runs) -> list[Run]:
    return [r for r in runs if r is not None and r.finished]


TABLE_VALUES = ("train_nll", "test_nll")  # a seed run counts when metrics.json has both


def counted_seed_runs(result: UnitResult) -> tuple[list[Run], int, list[str]]:
    """The seed runs Table 2 averages and counts as "seeds", the number that diverged, and why
    each other seed is not counted ("seed 3 (not run)", "seed 2 (`completed`, no test_nll)").

    A seed counts when its run finished without diverging and has a finite train and test NLL:
    a run without one would count in "seeds" but not in the mean.
    """
    counted, n_diverged, left_out = [], 0, []
    for seed, run in sorted(result.seed_runs.items()):
        if run is None:
            left_out.append(f"seed {seed} (not run)")
        elif not run.finished:
            left_out.append(f"seed {seed} (`{run.status}`, unfinished)")
        elif run.status == "diverged":
            n_diverged += 1
        elif absent := [k for k in TABLE_VALUES if not math.isfinite(run.get(k))]:
            left_out.append(f"seed {seed} (`{run.status}`, no {' or '.join(absent)})")
        else:
            counted.append(run)
    return counted, n_diverged, left_out


def _row(
    experiment: str, dataset: str, result: UnitResult, overrides: tuple[str, ...] = ()
) -> Table2Row:
    runs, n_diverged, left_out = counted_seed_runs(result)
    train = _mean_std([r.get("train_nll") for r in runs])
    test = _mean_std([r.get("test_nll") for r in runs])
    train_seq = _all_or_none([r.get("train_nll_seqavg") for r in runs])
    test_seq = _all_or_none([r.get("test_nll_seqavg") for r in runs])
    paper_train = paper_nll(experiment, "train", result.unit)
    paper_test = paper_nll(experiment, "test", result.unit)
    comparable = experiment not in NOT_COMPARABLE
    notes = []
    if result.selected_lr is None:
        finished = [run for run in result.candidates.values() if run is not None and run.finished]
        if not finished:
            notes.append("not run yet")
        elif len(finished) < len(result.candidates):
            notes.append("search unfinished; no usable candidate yet")
        else:
            notes.append("no candidate finished without diverging")
    if n_diverged:
        notes.append(f"{n_diverged} seed run(s) diverged, left out")
    if left_out:
        notes.append("not counted: " + ", ".join(left_out))
    n_improving = sum(r.still_improving for r in runs)
    if n_improving:
        notes.append(f"{STILL_IMPROVING_NOTE} ({n_improving} of {len(runs)} seed runs)")
    if result.grid_edge:
        notes.append(f"{GRID_EDGE_NOTE} ({result.grid_edge} candidate)")
    if experiment in NOT_COMPARABLE:
        notes.append(NOT_COMPARABLE[experiment])
    if runs and not all(map(math.isfinite, (train_seq[0], test_seq[0]))):  # one seed: no std
        notes.append("sequence-averaged NLL not recorded by every seed run")
    if overrides:  # the protocol changed this experiment's data or budget: say how
        notes.append("run with " + " ".join(f"`{o}`" for o in overrides))
    conventions = sorted({str(r.metrics.get("nll_convention", "?")) for r in runs})

    def diff(ours: float, paper: float | None) -> float | None:
        return ours - paper if comparable and paper is not None and math.isfinite(ours) else None

    return Table2Row(
        experiment=experiment,
        dataset=dataset,
        unit=result.unit,
        selected_lr=result.selected_lr,
        n_seeds=len(runs),
        train_nll_mean=train[0],
        train_nll_std=train[1],
        paper_train_nll=paper_train,
        train_diff=diff(train[0], paper_train),
        test_nll_mean=test[0],
        test_nll_std=test[1],
        paper_test_nll=paper_test,
        test_diff=diff(test[0], paper_test),
        train_nll_seqavg_mean=train_seq[0],
        train_nll_seqavg_std=train_seq[1],
        train_seqavg_diff=diff(train_seq[0], paper_train),
        test_nll_seqavg_mean=test_seq[0],
        test_nll_seqavg_std=test_seq[1],
        test_seqavg_diff=diff(test_seq[0], paper_test),
        epochs_mean=_mean_std([r.get("epochs") for r in runs])[0],
        updates_mean=_mean_std([r.get("updates") for r in runs])[0],
        wall_seconds_mean=_mean_std([run_share_seconds(r) for r in runs])[0],
        **budget_settings(runs or _finished(result.candidates.values())),
        nll_convention="; ".join(conventions),
        note="; ".join(notes),
    )


def table2_rows(results: SweepResults) -> list[Table2Row]:
    return [
        _row(exp.plan.reports_as, exp.plan.label, unit_result, exp.plan.changes)
        for exp in results.experiments
        for unit_result in exp.units.values()
    ]


def table2_csv(rows: list[Table2Row]) -> str:
    out = io.StringIO()
    fields = list(Table2Row.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
    return out.getvalue()
