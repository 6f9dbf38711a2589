"""Table 2: train and test NLL of the selected runs, mean ± std over seeds, paper beside ours."""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import asdict, dataclass

from gru_repro.reports.collect import (
    GRID_EDGE_NOTE,
    STILL_IMPROVING_NOTE,
    STILL_IMPROVING_RULE,
    Run,
    SweepResults,
    UnitResult,
)
from gru_repro.reports.paper import NOT_COMPARABLE, PAPER_SOURCE, paper_nll

UNIT_LABELS = {"tanh": "tanh", "gru": "GRU", "lstm": "LSTM"}


@dataclass
class Table2Row:
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
    epochs_mean: float
    updates_mean: float
    wall_seconds_mean: float
    nll_convention: str
    note: str


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std


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
        epochs_mean=_mean_std([r.get("epochs") for r in runs])[0],
        updates_mean=_mean_std([r.get("updates") for r in runs])[0],
        wall_seconds_mean=_mean_std([r.get("wall_seconds") for r in runs])[0],
        nll_convention="; ".join(conventions),
        note="; ".join(notes),
    )


def table2_rows(results: SweepResults) -> list[Table2Row]:
    return [
        _row(exp.plan.experiment, exp.plan.label, unit_result, exp.plan.changes)
        for exp in results.experiments
        for unit_result in exp.units.values()
    ]


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "–" if x is None or not math.isfinite(x) else format(x, fmt)


def _nll(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if math.isfinite(std) else f"{mean:.2f}"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"


def table2_markdown(rows: list[Table2Row], *, protocol_name: str, incomplete: bool) -> str:
    conventions = sorted({r.nll_convention for r in rows if r.nll_convention})
    lines = [
        "# Table 2: average negative log-probability per time step (nats)",
        "",
        f"Protocol `{protocol_name}`. Ours: mean ± std (sample std) over the seeds of the "
        "learning rate selected by validation NLL (the search run is seed 1); paper: "
        f"{PAPER_SOURCE}. Δ = ours − paper (lower NLL is better).",
        f"NLL convention of our runs: {', '.join(conventions) or 'unknown'}.",
        "",
    ]
    if incomplete:
        lines += [
            "**Incomplete sweep** (built with `--allow-incomplete`): some runs are missing or "
            "unfinished, so the selection and the means may change.",
            "",
        ]
    lines += [
        "| data set | unit | train (ours) | train (paper) | Δ train | test (ours) | test (paper) "
        "| Δ test | lr | seeds | epochs | wall time / run | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.dataset} | {UNIT_LABELS.get(r.unit, r.unit)} "
            f"| {_nll(r.train_nll_mean, r.train_nll_std)} | {_num(r.paper_train_nll)} "
            f"| {_num(r.train_diff, '+.2f')} "
            f"| {_nll(r.test_nll_mean, r.test_nll_std)} | {_num(r.paper_test_nll)} "
            f"| {_num(r.test_diff, '+.2f')} "
            f"| {_num(r.selected_lr, '.3g')} | {r.n_seeds} | {_num(r.epochs_mean, '.0f')} "
            f"| {_duration(r.wall_seconds_mean)} | {r.note} |"
        )
    target = target_check_lines(rows)
    if target:
        lines += ["", *target]
    lines += [
        "",
        "Notes: *" + STILL_IMPROVING_NOTE + "* = a seed run whose validation NLL was still "
        "improving when the epoch budget ended it: " + STILL_IMPROVING_RULE + "; a larger "
        "budget could lower its NLL. *" + GRID_EDGE_NOTE + "* = the selected learning rate is "
        "the largest or smallest candidate searched, so a better rate may lie outside the grid "
        "(see lr_search.md).",
    ]
    return "\n".join(lines) + "\n"


TARGET_MARGIN = 0.10  # nats: a music cell meets the reproduction target at paper + this


def target_check_lines(rows: list[Table2Row], margin: float = TARGET_MARGIN) -> list[str]:
    """One paragraph on the reproduction target: our mean test NLL <= paper + `margin`.

    Only rows with a paper number to compare with (the music sets) count; rows not run yet are
    counted as such, and every miss names its cell and its Δ test (ours − paper).
    """
    comparable = [
        r for r in rows if r.paper_test_nll is not None and r.experiment not in NOT_COMPARABLE
    ]
    if not comparable:
        return []
    done = [r for r in comparable if r.test_diff is not None]
    met = [r for r in done if r.test_diff <= margin]
    missed = [r for r in done if r.test_diff > margin]
    not_run = len(comparable) - len(done)
    line = (
        f"Target (test NLL at or below the paper's + {margin:.2f} nats): met by {len(met)} of "
        + (
            f"the {len(done)} music cells run so far ({not_run} not run yet)"
            if not_run
            else f"all {len(done)} music cells"
        )
    )
    if missed:
        line += "; missed by " + ", ".join(
            f"{r.dataset} {UNIT_LABELS.get(r.unit, r.unit)} (Δ test {r.test_diff:+.2f})"
            for r in missed
        )
    return [line + "."]


def table2_csv(rows: list[Table2Row]) -> str:
    out = io.StringIO()
    fields = list(Table2Row.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
    return out.getvalue()
