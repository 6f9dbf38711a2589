"""results/ablations/README.md is what scripts/ablation_summary.py writes from the run folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_script():
    path = REPO / "scripts" / "ablation_summary.py"
    spec = importlib.util.spec_from_file_location("ablation_summary", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.artifacts
def test_committed_summary_is_up_to_date() -> None:
    """Regenerated from the committed runs, the page is byte for byte the committed one."""
    script = load_script()
    assert (script.ABLATIONS_DIR / "README.md").read_text() == script.markdown()


@pytest.mark.artifacts
def test_every_ablation_folder_is_described_and_its_numbers_shown() -> None:
    script = load_script()
    folders = {p.name for p in script.ABLATIONS_DIR.iterdir() if p.is_dir()}
    assert folders and folders <= set(script.ABLATIONS)
    page = script.markdown()
    for name in folders:
        metrics = json.loads((script.ABLATIONS_DIR / name / "metrics.json").read_text())
        section = page.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        ablation_row = next(line for line in section.splitlines() if line.startswith("| ablation"))
        assert f"| {metrics['test_nll']:.3f} |" in ablation_row
        assert f"| {metrics['status']} |" in ablation_row


def test_a_missing_run_is_a_clear_error(tmp_path: Path) -> None:
    script = load_script()
    with pytest.raises(SystemExit, match="nowhere has no metrics.json"):
        script.row("x", tmp_path / "nowhere")


@pytest.mark.artifacts
def test_every_ablation_has_an_experiment_file_and_its_one_line_command() -> None:
    """Each described ablation is configs/experiment/ablation/<name>.yaml, and the page shows
    the one line that trains it (it is the committed run: tests/configs/
    test_committed_identities.py)."""
    from gru_repro import config_dir

    script = load_script()
    files = {p.stem for p in (config_dir() / "experiment" / "ablation").glob("*.yaml")}
    assert files == set(script.ABLATIONS)
    page = script.markdown()
    for name in script.ABLATIONS:
        section = page.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"\n    python -m gru_repro.train experiment=ablation/{name}\n" in section
