"""The one-change-at-a-time chain (results/chain/): each step's selection, step 6 read through
step 5's noisy_selection block, what moved between steps, and the committed report."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from fake_runs import write_fake_run

from gru_repro.reports.chain import NOTTINGHAM_GRU, Chain, ChainStep, StepResult, chain_markdown
from gru_repro.reports.collect import read_run

REPO_ROOT = Path(__file__).resolve().parents[2]
LRS = (1e-4, 1e-3, 1e-2)
STEPS = (
    ChainStep(0, "a", "start"),
    ChainStep(1, "b", "+ one change"),
    ChainStep(2, "b", "+ noisy selection", select_on="noisy"),
)
CHAIN = Chain("toy", "a toy", "music/nottingham", "gru", STEPS)


def _step(
    root: Path, step: ChainStep, valid: dict[float, float], extra: dict | None = None
) -> StepResult:
    """A step whose candidate ``lr`` ends with validation NLL ``valid[lr]`` (NaN: diverged;
    missing: not started); ``extra[lr]`` goes into that candidate's metrics.json."""
    candidates = {}
    for lr in LRS:
        if lr not in valid:
            candidates[lr] = None
            continue
        diverged = math.isnan(valid[lr])
        folder = root / step.config / f"lr={lr}"
        write_fake_run(
            root,
            "x",
            "gru",
            lr,
            1,
            valid_nll=3.0 if diverged else valid[lr],
            folder=folder,
            status="diverged" if diverged else "completed",
            extra=(extra or {}).get(lr, {}),
        )
        candidates[lr] = read_run(folder)
    return StepResult(step, candidates)


def test_each_step_selects_its_lowest_validation_nll_and_moves_are_step_differences(
    tmp_path: Path,
) -> None:
    start = _step(tmp_path, STEPS[0], {1e-4: 4.0, 1e-3: 3.5, 1e-2: math.nan})
    assert start.selected_lr == 1e-3  # the diverged candidate never counts
    # fake runs: train = valid - 0.3 + 0.01, test = valid + 0.1 + 0.01 (seed 1's jitter)
    assert start.selected("test_nll") == pytest.approx(3.61)
    noisy = {  # what each run reports at the checkpoint the noisy validation NLL picks
        lr: {"noisy_selection": {"best_valid_nll_seen": v, "test_nll": v, "best_epoch": 7}}
        for lr, v in {1e-4: 3.0, 1e-3: 3.4, 1e-2: 3.2}.items()
    }
    changed = _step(tmp_path, STEPS[1], {1e-4: 3.3, 1e-3: 3.6, 1e-2: 3.1}, noisy)
    assert changed.selected_lr == 1e-2
    by_noisy = StepResult(STEPS[2], changed.candidates)  # the same runs, the other selection
    assert by_noisy.selected_lr == 1e-4 and by_noisy.selected("test_nll") == 3.0
    assert by_noisy.selected("best_epoch") == 7

    markdown = chain_markdown(CHAIN, [start, changed, by_noisy], ["(provenance)"])
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:4]
    cells = [row.split(" | ") for row in rows]
    assert cells[0][3] == "0.001" and cells[1][3] == "0.01" and cells[2][3] == "0.0001"
    assert cells[1][10] == "-0.40" and cells[1][9] == "-0.40"  # test, train: 3.21 - 3.61
    assert cells[2][10] == "-0.21"  # 3.0 - 3.21: step 6's row moves from step 5's
    assert cells[0][11] == f"{3.61 - 3.23:+.2f} / {3.61 + 0.25 - 3.23:+.2f}"  # vs paper 3.23
    assert "Paper match at step 2" in markdown and "test missed (Δ -0.23)" in markdown
    assert "| 0 | 4.01 | **3.51** | *div* |" in markdown


def test_a_step_with_unfinished_runs_selects_nothing(tmp_path: Path) -> None:
    partial = _step(tmp_path, STEPS[0], {1e-4: 4.0, 1e-3: 3.5})  # 1e-2 not started
    assert partial.finished == 2 and partial.selected_lr is None
    assert math.isnan(partial.selected("test_nll"))
    markdown = chain_markdown(CHAIN, [partial], [])
    assert "| 2 of 3 |" in markdown
    assert "Paper match: no step has finished all its runs yet." in markdown


def test_the_nottingham_chain_goes_from_the_batch_8_protocol_to_the_released_one() -> None:
    configs = [step.config for step in NOTTINGHAM_GRU.steps]
    assert configs[0] == "released_optim/nottingham"
    assert configs[5] == configs[6] == "chain/nottingham_gru_5_500_epochs"
    assert [s.select_on for s in NOTTINGHAM_GRU.steps].count("noisy") == 1
    for config in configs[1:]:
        assert (REPO_ROOT / "configs" / "experiment" / f"{config}.yaml").is_file()


@pytest.mark.artifacts
def test_committed_chain_report_rebuilds_byte_for_byte() -> None:
    """results/chain/ is what scripts/chain_summary.py writes from the committed runs."""
    spec = importlib.util.spec_from_file_location(
        "chain_summary", REPO_ROOT / "scripts" / "chain_summary.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    runs = Path("results/runs")  # relative, as the Makefile passes it
    results = script.step_results(NOTTINGHAM_GRU, REPO_ROOT / runs)
    text = chain_markdown(NOTTINGHAM_GRU, results, script.provenance_lines(results, runs))
    committed = REPO_ROOT / "results" / "chain" / f"{NOTTINGHAM_GRU.name}.md"
    assert text == committed.read_text(encoding="utf-8")
