"""results/fit.md: the lowest training NLL any search run reached, beside the paper's and the
selected run's, and the committed report rebuilt from the committed runs."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from fake_runs import write_fake_run

from gru_repro.reports.collect import collect
from gru_repro.reports.fit import fit_markdown, fit_rows
from gru_repro.reports.protocol import ExperimentPlan, Protocol, protocol_path, run_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
LRS = (1e-4, 1e-3)


def test_lowest_training_nll_is_the_minimum_over_every_candidate_and_epoch(tmp_path: Path) -> None:
    """The lowest epoch-mean train NLL of any candidate (epoch 0 left out), even of a rate the
    validation NLL did not select, with the validation NLL at that epoch."""
    plans = (
        ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=(1,)),
        ExperimentPlan("speech/a", units=("gru",), lrs=LRS, seeds=(1,)),
    )
    protocol = Protocol("released-exact", plans)
    for experiment in ("music/jsb", "speech/a"):
        for lr, valid in ((1e-4, 3.0), (1e-3, 3.5)):  # 1e-4 selected: fake train = valid - 0.29
            write_fake_run(
                tmp_path, experiment, "gru", lr, 1, valid_nll=valid, best_epoch=6,
                extra={"best_valid_nll_seen": valid + 0.01},
            )  # fmt: skip
    overfitting = "epoch,updates,wall_seconds,train_nll,valid_nll\n0,0,0,0.5,9\n"  # 0: untrained
    overfitting += "1,10,1,2.5,3.6\n2,20,2,1.8,3.9\n3,30,3,2.0,4.2\n"
    (run_dir(tmp_path, "music/jsb", "gru", 1e-3, 1) / "curves.csv").write_text(overfitting)
    results = collect(tmp_path, protocol)
    (row,) = fit_rows(results)  # speech is not comparable with the paper: left out
    assert row.paper_train == 6.94 and row.selected_train == pytest.approx(2.71)
    assert (row.lowest_train, row.lowest_lr, row.lowest_epoch) == (1.8, 1e-3, 2)
    assert row.valid_then == 3.9 and row.best_valid == 3.51
    markdown = fit_markdown([(results, [row])])
    assert "| JSB Chorales | GRU | 6.94 | 2.71 | 6 | 1.80 | 0.001 | 2 | 3.90 | 3.51 |" in markdown
    assert "Protocol `released-exact`: the released code's training, exactly" in markdown


def test_a_cell_without_finished_runs_shows_dashes(tmp_path: Path) -> None:
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=(1,))
    results = collect(tmp_path, Protocol("t", (plan,)))
    (row,) = fit_rows(results)
    assert math.isnan(row.lowest_train) and row.lowest_lr is None
    assert "| JSB Chorales | GRU | 6.94 | – | – | – | – | – | – | – |" in fit_markdown(
        [(results, [row])]
    )
    assert "Incomplete: 2 planned run(s) not finished yet." in fit_markdown([(results, [row])])


@pytest.mark.artifacts
def test_committed_fit_report_rebuilds_byte_for_byte() -> None:
    spec = importlib.util.spec_from_file_location("fit", REPO_ROOT / "scripts" / "fit_summary.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    runs = REPO_ROOT / "results" / "runs"
    sections = []
    for name in script.PROTOCOLS:
        if protocol_path(runs, name).is_file():
            results = collect(runs, Protocol.load(runs, name))
            sections.append((results, fit_rows(results)))
    assert fit_markdown(sections) == (REPO_ROOT / "results" / "fit.md").read_text("utf-8")
