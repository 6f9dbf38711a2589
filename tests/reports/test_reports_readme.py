"""The README's results block and Table 2's notes come from the run folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_runs import fake_valid_nll, write_fake_run

from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import collect
from gru_repro.reports.protocol import ExperimentPlan, Protocol
from gru_repro.reports.readme_section import (
    BEGIN,
    END,
    markers,
    project_readme_for,
    results_block,
    update_readme_results,
)
from gru_repro.reports.table2 import table2_rows

LRS = (1e-4, 1e-3)


def _protocol() -> Protocol:
    plans = (
        ExperimentPlan("music/jsb", lrs=LRS, seeds=(1, 2)),
        ExperimentPlan("music/nottingham", lrs=LRS, seeds=(1, 2)),
    )
    return Protocol("test", plans, "two experiments, only JSB run")


def _run_jsb(root: Path) -> None:
    for unit in ("tanh", "gru", "lstm"):
        for lr in LRS:
            valid = fake_valid_nll(unit, lr, 1e-3)
            write_fake_run(root, "music/jsb", unit, lr, 1, valid_nll=valid)
        write_fake_run(root, "music/jsb", unit, 1e-3, 2, valid_nll=fake_valid_nll(unit, 1e-3, 1e-3))


@pytest.mark.slow
def test_readme_block_is_replaced_with_table2_and_rest_kept(tmp_path: Path) -> None:
    runs, repo = tmp_path / "runs", tmp_path / "repo"
    _run_jsb(runs)
    readme = repo / "README.md"
    repo.mkdir()
    readme.write_text(f"# Project\n\nintro\n\n{BEGIN}\nold numbers 1.23\n{END}\n\n## After\n")

    written = build_reports(
        runs, repo / "results", _protocol(), allow_incomplete=True, project_readme=readme
    )

    text = readme.read_text()
    assert readme in written
    assert "old numbers 1.23" not in text
    assert text.startswith("# Project\n\nintro\n") and text.endswith("## After\n")
    table = (repo / "results" / "table2.md").read_text()
    body = text[text.index(BEGIN) : text.index(END)]
    for line in table.splitlines()[1:]:  # every Table 2 line but its heading
        assert line in body
    assert "![Figure 3" in body and "(results/figure3.png)" in body


@pytest.mark.slow
def test_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    _run_jsb(tmp_path / "runs")
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    written = build_reports(
        tmp_path / "runs",
        tmp_path / "results",
        _protocol(),
        allow_incomplete=True,
        project_readme=readme,
    )
    assert readme not in written
    assert readme.read_text() == "# no markers here\n"


def test_only_folders_under_results_with_markers_update_the_readme(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    assert project_readme_for(tmp_path / "results", tmp_path) == readme
    assert project_readme_for(tmp_path / "results" / "released", tmp_path) == readme
    assert project_readme_for(tmp_path / "outputs" / "mine", tmp_path) is None
    old_block = "<!-- results:begin -->\nold main\n<!-- results:end -->\n"
    readme.write_text(
        f"# x\n{old_block}<!-- results/released:begin -->\nold\n<!-- results/released:end -->\n"
    )
    for name in ("released", "quick"):
        folder = tmp_path / "results" / name
        folder.mkdir(parents=True)
        (folder / "table2.md").write_text(f"# Table 2\n{name} table\n")
    assert update_readme_results(readme, tmp_path / "results" / "released")
    assert not update_readme_results(readme, tmp_path / "results" / "quick")  # no markers
    text = readme.read_text()
    assert "released table" in text and "\nold\n" not in text and "quick" not in text
    assert old_block in text  # the other folder's block is untouched


def test_experiment_not_run_is_not_called_diverged(tmp_path: Path) -> None:
    _run_jsb(tmp_path)
    rows = table2_rows(collect(tmp_path, _protocol()))
    notes = {(row.experiment, row.unit): row.note for row in rows}
    assert notes[("music/nottingham", "gru")] == "not run yet"
    assert "diverg" not in notes[("music/nottingham", "gru")]
    # a two-candidate grid: the selected 1e-3 is its largest candidate, and nothing else
    edge = "selected rate at the edge of the grid (largest candidate)"
    assert notes[("music/jsb", "gru")] == edge


@pytest.mark.artifacts
def test_committed_readme_blocks_match_the_committed_reports() -> None:
    """Every results block of the project README is what its reports folder yields now."""
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "README.md").read_text()
    checked = 0
    for folder in (repo / "results", repo / "results" / "released"):
        begin, end = markers(folder, repo)
        if begin not in text or not (folder / "table2.md").is_file():
            continue
        block = text.split(begin, 1)[1].split(end, 1)[0]
        assert block.strip("\n") == results_block(folder, repo), folder
        checked += 1
    assert checked >= 1
