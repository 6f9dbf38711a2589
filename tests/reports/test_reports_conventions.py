"""Table 2 under both NLL conventions: cells, Δs, the target line per convention, and the header's
protocol and budget read from the runs (fake run folders, tests/helpers/fake_runs.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fake_runs import SEQAVG_OFFSET, fake_valid_nll, write_fake_run

from gru_repro.reports.collect import collect
from gru_repro.reports.protocol import ExperimentPlan, Protocol
from gru_repro.reports.table2 import table2_rows
from gru_repro.reports.table2_markdown import COLUMNS, table2_markdown, target_check_lines

LRS = (1e-4, 1e-3)
BEST = 1e-3  # every unit's bowl has its minimum here
SEEDS = (1, 2, 3)


def _fill(root: Path, plan: ExperimentPlan, **kwargs) -> None:
    """Every search candidate and the selected rate's seeds; ``kwargs`` go to write_fake_run."""
    for unit in plan.units:
        for lr in plan.lrs:
            valid = fake_valid_nll(unit, lr, BEST)
            write_fake_run(root, plan.experiment, unit, lr, 1, valid_nll=valid, **kwargs)
        for seed in plan.seeds[1:]:
            valid = fake_valid_nll(unit, BEST, BEST)
            write_fake_run(root, plan.experiment, unit, BEST, seed, valid_nll=valid, **kwargs)


def _cells(markdown: str, dataset: str, unit: str) -> dict[str, str]:
    """The markdown row of (dataset, unit) as column -> cell; repeated names ("Δ") get the
    column before them as a prefix: "Δ train frame-weighted"."""
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {dataset} | {unit} |"))
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    named = {}
    for i, (name, cell) in enumerate(zip(COLUMNS, cells, strict=True)):
        named[f"Δ {COLUMNS[i - 1]}" if name == "Δ" else name] = cell
    return named


def test_both_conventions_beside_the_paper_with_their_differences(tmp_path: Path) -> None:
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=SEEDS)
    protocol = Protocol("test", (plan,))
    _fill(tmp_path, plan)
    (row,) = table2_rows(collect(tmp_path, protocol))
    # fake: train = valid - 0.3 + 0.01 seed, test = valid + 0.1 + 0.01 seed, valid 3.0 at BEST;
    # the sequence-averaged NLL is the frame-weighted one + SEQAVG_OFFSET
    train = [2.7 + 0.01 * s for s in SEEDS]
    test = [3.1 + 0.01 * s for s in SEEDS]
    assert row.train_nll_mean == pytest.approx(sum(train) / 3)
    assert row.train_nll_seqavg_mean == pytest.approx(sum(train) / 3 + SEQAVG_OFFSET)
    assert row.test_nll_seqavg_mean == pytest.approx(sum(test) / 3 + SEQAVG_OFFSET)
    assert row.test_nll_seqavg_std == pytest.approx(0.01)
    # paper JSB GRU: train 6.94, test 8.54; each convention has its own Δ to the same number
    assert row.train_seqavg_diff == pytest.approx(row.train_nll_seqavg_mean - 6.94)
    assert row.test_seqavg_diff == pytest.approx(row.test_nll_seqavg_mean - 8.54)
    assert row.test_diff == pytest.approx(row.test_nll_mean - 8.54)

    cells = _cells(
        table2_markdown([row], protocol_name="test", incomplete=False), "JSB Chorales", "GRU"
    )
    assert cells["train (paper)"] == "6.94" and cells["test (paper)"] == "8.54"
    assert cells["train frame-weighted"] == "2.72 ± 0.01"
    assert cells["Δ train frame-weighted"] == "-4.22"
    assert cells["train seq-averaged"] == "2.97 ± 0.01"
    assert cells["Δ train seq-averaged"] == "-3.97"
    assert cells["test frame-weighted"] == "3.12 ± 0.01"
    assert cells["Δ test frame-weighted"] == "-5.42"
    assert cells["test seq-averaged"] == "3.37 ± 0.01"
    assert cells["Δ test seq-averaged"] == "-5.17"


def test_a_seed_without_the_sequence_average_blanks_that_convention_only(tmp_path: Path) -> None:
    """A mean over fewer seeds would not be the same cell under the other convention."""
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=SEEDS)
    _fill(tmp_path, plan)
    write_fake_run(tmp_path, "music/jsb", "gru", BEST, 3, valid_nll=3.0, seqavg_offset=None)
    (row,) = table2_rows(collect(tmp_path, Protocol("test", (plan,))))
    assert row.n_seeds == 3 and math.isfinite(row.test_nll_mean)
    assert math.isnan(row.test_nll_seqavg_mean) and row.test_seqavg_diff is None
    assert "sequence-averaged NLL not recorded by every seed run" in row.note
    cells = _cells(
        table2_markdown([row], protocol_name="t", incomplete=False), "JSB Chorales", "GRU"
    )
    assert cells["test seq-averaged"] == "–" and cells["Δ test seq-averaged"] == "–"
    assert cells["test frame-weighted"] == "3.12 ± 0.01"


def test_a_single_seed_with_both_conventions_has_no_missing_sequence_average(
    tmp_path: Path,
) -> None:
    """One counted seed has no std; that is not a sequence-averaged NLL left unrecorded."""
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=SEEDS)
    _fill(tmp_path, ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=(1,)))
    (row,) = table2_rows(collect(tmp_path, Protocol("test", (plan,))))
    assert row.n_seeds == 1 and math.isfinite(row.test_nll_seqavg_mean)
    assert "not recorded" not in row.note
    assert "seed 2 (not run)" in row.note


def test_target_is_counted_under_one_convention_for_the_whole_table(tmp_path: Path) -> None:
    """JSB GRU meets the target only frame-weighted, JSB tanh only sequence-averaged: picking
    the better convention cell by cell would claim 2 of 2; each convention's line claims 1."""
    plan = ExperimentPlan("music/jsb", units=("tanh", "gru"), lrs=LRS, seeds=(1,))
    for unit, lr in ((u, lr) for u in plan.units for lr in LRS):
        paper = {"tanh": 9.10, "gru": 8.54}[unit]
        # frame test = valid + 0.11 (seed 1); seqavg = frame + offset
        valid = paper - 0.11 + (0.05 if unit == "gru" else 0.30) + (lr != BEST)
        offset = 0.20 if unit == "gru" else -0.40
        write_fake_run(tmp_path, "music/jsb", unit, lr, 1, valid_nll=valid, seqavg_offset=offset)
    rows = table2_rows(collect(tmp_path, Protocol("test", (plan,))))
    by_unit = {r.unit: r for r in rows}
    assert by_unit["gru"].test_diff == pytest.approx(0.05)
    assert by_unit["gru"].test_seqavg_diff == pytest.approx(0.25)
    assert by_unit["tanh"].test_diff == pytest.approx(0.30)
    assert by_unit["tanh"].test_seqavg_diff == pytest.approx(-0.10)

    intro, frame, seqavg = target_check_lines(rows)
    assert "one convention for the whole table" in intro and "+ 0.10 nats" in intro
    assert frame == (
        "- frame-weighted: met by 1 of all 2 music cells; missed by JSB Chorales tanh "
        "(Δ test +0.30)."
    )
    assert seqavg == (
        "- sequence-averaged: met by 1 of all 2 music cells; missed by JSB Chorales GRU "
        "(Δ test +0.25)."
    )
    markdown = table2_markdown(rows, protocol_name="test", incomplete=False)
    assert f"\n{intro}\n{frame}\n{seqavg}\n" in markdown


def _budget_line(markdown: str) -> str:
    return next(x for x in markdown.splitlines() if x.startswith("Budget"))


def test_header_budget_is_read_from_the_runs(tmp_path: Path) -> None:
    """Batch size, epoch budget, stopping, clipping and objective come from metrics.json (or the
    identity's trainer section of runs that predate a top-level key), per data set where they
    differ; changing the runs changes the header."""
    jsb = ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=(1, 2))
    notts = ExperimentPlan("music/nottingham", units=("gru",), lrs=LRS, seeds=(1, 2))
    protocol = Protocol("full-released-optim", (jsb, notts))
    exact = {
        "batch_size": 1,
        "max_epochs": 500,
        "patience": 0,
        "objective": "sum",
        "weight_noise": 0.075,
        "identity": {
            "trainer": {"clip_grad_norm": 0.0, "weight_noise_per": "sequence", "noisy_valid": True},
            "optim": {"max_update_norm": 1.0},
        },
    }
    _fill(tmp_path, jsb, extra=exact)
    old_style = {  # patience only in the identity, as older runs; the added keys at their defaults
        "batch_size": 8,
        "weight_noise": 0.075,
        "identity": {"trainer": {"patience": 20, "clip_grad_norm": 1.0}, "optim": {"lr": 1e-3}},
    }
    _fill(tmp_path, notts, extra=old_style)
    markdown = table2_markdown(
        table2_rows(collect(tmp_path, protocol)), protocol_name=protocol.name, incomplete=False
    )
    lines = markdown.splitlines()
    assert lines[2] == (
        "Protocol `full-released-optim`: the paper's protocol with the released code's optimizer."
    )
    assert _budget_line(markdown) == (
        "Budget (read from the runs' metrics.json): batch size: 1 sequence per update "
        "(JSB Chorales), 8 sequences per update (Nottingham); epoch budget: 500 epochs "
        "(JSB Chorales), 50 epochs (Nottingham); early stopping: none (JSB Chorales), "
        "patience 20 evaluations (Nottingham); gradient-norm clipping: none (JSB Chorales), "
        "global norm 1 (Nottingham); objective: sum (the NLL summed over the sequence's frames "
        "and notes) (JSB Chorales), mean (the per-step NLL averaged over the batch's predicted "
        "frames) (Nottingham); update-norm cap: norm 1 (JSB Chorales), none (Nottingham); "
        "weight noise: std 0.075, one draw per sequence (JSB Chorales), std 0.075, one draw per "
        "update (Nottingham); checkpoint selection: clean validation NLL (clean and noisy both "
        "logged) (JSB Chorales), clean validation NLL (Nottingham)."
    )
    assert "NLL conventions, both shown: *frame-weighted*" in markdown
    assert "*sequence-averaged* = the mean over sequences" in markdown

    _fill(tmp_path, notts, extra=exact)  # now alike: one value each
    markdown = table2_markdown(
        table2_rows(collect(tmp_path, protocol)), protocol_name="other", incomplete=False
    )
    assert markdown.splitlines()[2] == "Protocol `other`."  # no entry names it: no title
    assert _budget_line(markdown) == (
        "Budget (read from the runs' metrics.json): batch size: 1 sequence per update; epoch "
        "budget: 500 epochs; early stopping: none; gradient-norm clipping: none; objective: sum "
        "(the NLL summed over the sequence's frames and notes); update-norm cap: norm 1; weight "
        "noise: std 0.075, one draw per sequence; checkpoint selection: clean validation NLL "
        "(clean and noisy both logged)."
    )


def test_header_says_what_the_runs_do_not_record(tmp_path: Path) -> None:
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=(1,))
    _fill(tmp_path, plan)  # fake runs record max_epochs only
    markdown = table2_markdown(
        table2_rows(collect(tmp_path, Protocol("t", (plan,)))), protocol_name="t", incomplete=False
    )
    budget = _budget_line(markdown)
    assert "batch size: not recorded by the runs" in budget
    assert "epoch budget: 50 epochs" in budget
    assert "early stopping: not recorded by the runs" in budget
    for left_out in ("objective", "update-norm cap", "weight noise", "checkpoint selection"):
        assert left_out not in budget  # runs from before identities were recorded: left out


def test_a_variant_with_its_own_run_group_reports_as_the_papers_data_set(tmp_path: Path) -> None:
    """Runs in folder group released/jsb that report as music/jsb get JSB's label and paper."""
    plan = ExperimentPlan(
        "released/jsb", units=("gru",), lrs=LRS, seeds=(1,), reports_as="music/jsb"
    )
    protocol = Protocol("test", (plan,))
    _fill(tmp_path, plan)
    (row,) = table2_rows(collect(tmp_path, protocol))
    assert row.dataset == "JSB Chorales" and row.experiment == "music/jsb"
    assert row.paper_test_nll == 8.54 and row.test_seqavg_diff is not None
    protocol.save(tmp_path)
    (loaded,) = Protocol.load(tmp_path, "test").experiments
    assert loaded.reports_as == "music/jsb" and loaded.experiment == "released/jsb"
