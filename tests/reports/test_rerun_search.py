"""scripts/rerun_search.py: the comparison of a rerun search with the committed one, from two
runs roots of fake run folders (the training half is the sweep the CLI tests cover)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fake_runs import fake_valid_nll, write_fake_run

from gru_repro.reports.protocol import ExperimentPlan, Protocol

REPO = Path(__file__).resolve().parents[2]
LRS = (1e-4, 1e-3, 1e-2)
EXPERIMENT = "music/jsb"


@pytest.fixture(scope="module")
def rerun_search():
    spec = importlib.util.spec_from_file_location(
        "rerun_search", REPO / "scripts" / "rerun_search.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _search(root: Path, shifts: dict[tuple[str, float], float], best: dict[str, float]) -> None:
    for unit in ("tanh", "gru"):
        for lr in LRS:
            nll = fake_valid_nll(unit, lr, best[unit]) + shifts.get((unit, lr), 0.0)
            write_fake_run(root, EXPERIMENT, unit, lr, 1, valid_nll=nll)


@pytest.fixture
def roots(tmp_path) -> tuple[Path, Path]:
    reference, out = tmp_path / "committed", tmp_path / "rerun"
    plan = ExperimentPlan(EXPERIMENT, units=("tanh", "gru"), lrs=LRS, seeds=(1, 2, 3))
    Protocol("full", (plan,)).save(reference)
    _search(reference, {}, {"tanh": 1e-3, "gru": 1e-3})
    # the rerun: tanh within the tolerance everywhere; GRU's lr 1e-2 moves by 0.6 nats and
    # becomes the selected one
    _search(
        out / "runs",
        {("tanh", 1e-4): 0.004, ("gru", 1e-2): -0.6},
        {"tanh": 1e-3, "gru": 1e-3},
    )
    timing = {
        "command": "python -m gru_repro.train -m experiment=music/jsb trainer.population=auto",
        "wall_seconds": 300.0,
        "cpu_seconds": 420.0,
        "cpus": 2,
        "cpu_model": "Test CPU",
        "commit": "abcdef0123456789",
        "date": "2026-12-02 19:00:00 UTC",
    }
    (out / "rerun.json").write_text(json.dumps(timing))
    return reference, out


def test_the_comparison_marks_each_candidate_and_the_selection(rerun_search, roots) -> None:
    reference, out = roots
    argv = ["--experiment", EXPERIMENT, "--reference", str(reference), "--out", str(out)]
    assert rerun_search.main([*argv, "--compare-only"]) == 0
    text = (out / "README.md").read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| tanh") or line.startswith("| GRU")
    ]
    assert len(rows) == 6
    assert all(row.endswith("| yes |") for row in rows if row.startswith("| tanh"))
    bad = [row for row in rows if row.endswith("| NO |")]
    assert len(bad) == 1 and bad[0].startswith("| GRU | 0.01 ← rerun")
    assert "Candidates matching: 5 of 6." in text
    assert "- tanh: the same rate selected (0.001)." in text
    assert "- GRU: the rerun selects 0.01 instead of 0.001" in text and "MORE than" in text
    assert "5.0 min wall, 7.0 min CPU, on 2 CPUs (Test CPU), commit abcdef0123" in text
    assert "| -0.0040 |" not in text and "| 0.0040 |" in text  # Δ = rerun - committed


def test_an_experiment_outside_the_committed_protocol_is_exit_2(rerun_search, roots, capsys):
    reference, out = roots
    argv = ["--experiment", "music/nottingham", "--reference", str(reference), "--out", str(out)]
    assert rerun_search.main([*argv, "--compare-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --experiment music/nottingham") and len(err.splitlines()) == 1
    assert not (out / "README.md").exists()
