"""results/table2.md: Table 2's rows under both NLL conventions, each beside the paper.

The released code leaves open which convention the paper's Table 2 uses (frame-weighted or
sequence-averaged: gru_repro.training.metrics), so every cell shows ours under both, each with
its Δ to the paper's one number. The header states what belongs to the whole table: the
protocol, the conventions and the budget, the budget read from the runs' metrics.json (never
typed in). The target line counts the cells that meet the target under one convention for the
whole table, once per convention, each named.
"""

from __future__ import annotations

import math

from gru_repro.reports.collect import GRID_EDGE_NOTE, STILL_IMPROVING_NOTE, STILL_IMPROVING_RULE
from gru_repro.reports.paper import NOT_COMPARABLE, PAPER_SOURCE
from gru_repro.reports.protocol import protocol_paper_match, protocol_title
from gru_repro.reports.table2 import CONVENTIONS, UNIT_LABELS, Table2Row

TARGET_MARGIN = 0.10  # nats: a music cell meets the reproduction target at paper + this
TRAIN_MATCH_MARGIN = 0.3  # nats: a paper match also has its train NLL within ± this


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


# Budget settings of the header: Table2Row field -> (what the setting is called, how a value
# reads).
BUDGET = {
    "batch_size": ("batch size", "{} sequences per update"),
    "max_epochs": ("epoch budget", "{} epochs"),
    "early_stopping": ("early stopping", "{}"),
    "grad_clip": ("gradient-norm clipping", "{}"),
    "objective": ("objective", "{}"),
    "update_cap": ("update-norm cap", "{}"),
    "weight_noise": ("weight noise", "{}"),
    "selection": ("checkpoint selection", "{}"),
}
# left out where no run records them (runs from before the runs recorded their identity)
OPTIONAL = ("objective", "update_cap", "weight_noise", "selection")


def budget_line(rows: list[Table2Row]) -> str:
    """One line: each budget setting with its value, or each value with the data sets that ran
    with it when they differ ("not recorded" for data sets whose runs lack it). A setting no
    run records is named as such, except the objective, left out then (runs from before it
    was recorded). Rows with no run read (not run yet) do not count."""
    ran = [r for r in rows if r.n_seeds or any(getattr(r, key) for key in BUDGET)]
    parts = []
    for key, (name, form) in BUDGET.items():
        by_value: dict[str, list[str]] = {}
        for row in ran:
            value = getattr(row, key)
            shown = form.format(value) if value else "not recorded"
            if value == "1" and key == "batch_size":
                shown = "1 sequence per update"
            datasets = by_value.setdefault(shown, [])
            if row.dataset not in datasets:
                datasets.append(row.dataset)
        if set(by_value) <= {"not recorded"}:
            if key not in OPTIONAL:
                parts.append(f"{name}: not recorded by the runs")
            continue
        if len(by_value) == 1:
            parts.append(f"{name}: {next(iter(by_value))}")
        else:
            parts.append(
                f"{name}: " + ", ".join(f"{v} ({', '.join(d)})" for v, d in by_value.items())
            )
    return "Budget (read from the runs' metrics.json): " + "; ".join(parts) + "."


def header_lines(rows: list[Table2Row], protocol_name: str) -> list[str]:
    title = protocol_title(protocol_name)
    recorded = sorted({r.nll_convention for r in rows if r.nll_convention})
    definitions = "; ".join(
        f"*{name}* = {definition} (metrics.json `<split>_nll{suffix}`)"
        for name, (suffix, definition) in CONVENTIONS.items()
    )
    return [
        "# Table 2: average negative log-probability per time step (nats)",
        "",
        f"Protocol `{protocol_name}`" + (f": {title}." if title else "."),
        budget_line(rows),
        f"NLL conventions, both shown: {definitions}. The paper does not say which its Table 2 "
        f"uses; its one number per split stands beside both. Headline convention recorded by "
        f"our runs: {', '.join(recorded) or 'unknown'}.",
        f"Ours: mean ± std (sample std) over the seeds of the learning rate selected by "
        f"validation NLL (the search run is seed 1); paper: {PAPER_SOURCE}. Δ = ours − paper "
        f"(lower NLL is better).",
        "",
    ]


COLUMNS = (
    "data set",
    "unit",
    "train (paper)",
    "train frame-weighted",
    "Δ",
    "train seq-averaged",
    "Δ",
    "test (paper)",
    "test frame-weighted",
    "Δ",
    "test seq-averaged",
    "Δ",
    "lr",
    "seeds",
    "epochs",
    "wall time / run",
    "note",
)


def _table_line(r: Table2Row) -> str:
    cells = (
        r.dataset,
        UNIT_LABELS.get(r.unit, r.unit),
        _num(r.paper_train_nll),
        _nll(r.train_nll_mean, r.train_nll_std),
        _num(r.train_diff, "+.2f"),
        _nll(r.train_nll_seqavg_mean, r.train_nll_seqavg_std),
        _num(r.train_seqavg_diff, "+.2f"),
        _num(r.paper_test_nll),
        _nll(r.test_nll_mean, r.test_nll_std),
        _num(r.test_diff, "+.2f"),
        _nll(r.test_nll_seqavg_mean, r.test_nll_seqavg_std),
        _num(r.test_seqavg_diff, "+.2f"),
        _num(r.selected_lr, ".3g"),
        str(r.n_seeds),
        _num(r.epochs_mean, ".0f"),
        _duration(r.wall_seconds_mean),
        r.note,
    )
    return "| " + " | ".join(cells) + " |"


def table2_markdown(rows: list[Table2Row], *, protocol_name: str, incomplete: bool) -> str:
    lines = header_lines(rows, protocol_name)
    if incomplete:
        lines += [
            "**Incomplete sweep** (built with `--allow-incomplete`): some runs are missing or "
            "unfinished, so the selection and the means may change.",
            "",
        ]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [_table_line(r) for r in rows]
    target = target_check_lines(rows)
    if target:
        lines += ["", *target]
    match = paper_match_lines(rows) if protocol_paper_match(protocol_name) else []
    if match:
        lines += ["", *match]
    lines += [
        "",
        "Notes: *" + STILL_IMPROVING_NOTE + "* = a seed run whose validation NLL was still "
        "improving when the epoch budget ended it: " + STILL_IMPROVING_RULE + "; a larger "
        "budget could lower its NLL. *" + GRID_EDGE_NOTE + "* = the selected learning rate is "
        "the largest or smallest candidate searched, so a better rate may lie outside the grid "
        "(see lr_search.md). *wall time / run* = the mean over the seed runs of each one's "
        "training wall time; a run trained as a member of a population (one process for the "
        "whole search) counts its process's wall time divided by the members.",
    ]
    return "\n".join(lines) + "\n"


# convention -> the Table2Row field of its Δ test
TEST_DIFF = {"frame-weighted": "test_diff", "sequence-averaged": "test_seqavg_diff"}


def _music_cells(rows: list[Table2Row]) -> list[Table2Row]:
    """The rows with a paper number to compare with (the music sets)."""
    return [r for r in rows if r.paper_test_nll is not None and r.experiment not in NOT_COMPARABLE]


def target_check_lines(rows: list[Table2Row], margin: float = TARGET_MARGIN) -> list[str]:
    """The reproduction target (our mean test NLL <= paper + `margin`), counted over the whole
    table under one convention at a time: one line per convention, each named, never a cell
    under one convention and the next under the other.

    Only rows with a paper number to compare with (the music sets) count; rows not run yet are
    counted as such, and every miss names its cell and its Δ test (ours − paper).
    """
    comparable = _music_cells(rows)
    if not comparable:
        return []
    lines = [
        f"Target (test NLL at or below the paper's + {margin:.2f} nats), counted under one "
        "convention for the whole table:"
    ]
    for convention, field in TEST_DIFF.items():
        diffs = [(r, getattr(r, field)) for r in comparable]
        done = [(r, d) for r, d in diffs if d is not None]
        met = [r for r, d in done if d <= margin]
        missed = [(r, d) for r, d in done if d > margin]
        not_run = len(comparable) - len(done)
        line = f"- {convention}: met by {len(met)} of " + (
            f"the {len(done)} music cells with this NLL so far ({not_run} not run yet or "
            "without it)"
            if not_run
            else f"all {len(done)} music cells"
        )
        if missed:
            line += "; missed by " + ", ".join(
                f"{r.dataset} {UNIT_LABELS.get(r.unit, r.unit)} (Δ test {d:+.2f})"
                for r, d in missed
            )
        lines.append(line + ".")
    return lines


# convention -> the Table2Row fields of its Δ train and Δ test
MATCH_DIFFS = {
    "frame-weighted": ("train_diff", "test_diff"),
    "sequence-averaged": ("train_seqavg_diff", "test_seqavg_diff"),
}


def paper_match_lines(
    rows: list[Table2Row],
    test_margin: float = TARGET_MARGIN,
    train_margin: float = TRAIN_MATCH_MARGIN,
) -> list[str]:
    """For a protocol that trains as the paper's code did (OptimizerVariant.paper_match): the
    two-sided match, test NLL within ± `test_margin` and train NLL within ± `train_margin` of
    the paper's, counted under one convention for the whole table, every miss named with both
    Δs. A test NLL below the paper's by more than the margin is a miss here: the numbers, not
    a win, are what such a protocol has to reproduce."""
    comparable = _music_cells(rows)
    if not comparable:
        return []
    lines = [
        f"Paper match (test NLL within ± {test_margin:.2f} nats of the paper's and train NLL "
        f"within ± {train_margin:.1f}), counted under one convention for the whole table:"
    ]
    for convention, (train_field, test_field) in MATCH_DIFFS.items():
        done = [
            (r, getattr(r, train_field), getattr(r, test_field))
            for r in comparable
            if getattr(r, train_field) is not None and getattr(r, test_field) is not None
        ]
        missed = [
            (r, tr, te) for r, tr, te in done if abs(te) > test_margin or abs(tr) > train_margin
        ]
        not_run = len(comparable) - len(done)
        line = f"- {convention}: matched by {len(done) - len(missed)} of " + (
            f"the {len(done)} music cells with this NLL so far ({not_run} not run yet)"
            if not_run
            else f"all {len(done)} music cells"
        )
        if missed:
            line += "; missed by " + ", ".join(
                f"{r.dataset} {UNIT_LABELS.get(r.unit, r.unit)} "
                f"(Δ train {tr:+.2f}, Δ test {te:+.2f})"
                for r, tr, te in missed
            )
        lines.append(line + ".")
    return lines
