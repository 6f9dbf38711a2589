"""Table 2's "seeds" counts only seed runs with values, and names each one left out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fake_runs import fake_valid_nll, write_fake_run

from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import collect
from gru_repro.reports.lr_search import lr_search_markdown
from gru_repro.reports.protocol import ExperimentPlan, Protocol, run_dir
from gru_repro.reports.table2 import counted_seed_runs, table2_csv, table2_rows
from gru_repro.reports.table2_markdown import COLUMNS, table2_markdown

REPO_ROOT = Path(__file__).resolve().parents[2]
LRS = (1e-4, 1e-3)
BEST = 1e-3


def _protocol() -> Protocol:
    return Protocol("test", (ExperimentPlan("music/jsb", lrs=LRS, seeds=(1, 2, 3)),))


def _fill(root: Path, *, skip_seed: int | None = None) -> None:
    for unit in ("tanh", "gru", "lstm"):
        for lr in LRS:
            valid = fake_valid_nll(unit, lr, BEST)
            write_fake_run(root, "music/jsb", unit, lr, 1, valid_nll=valid)
        for seed in (2, 3):
            if (unit, seed) != ("gru", skip_seed):
                write_fake_run(root, "music/jsb", unit, BEST, seed, valid_nll=3.0)


def _drop_metric(root: Path, seed: int, key: str) -> None:
    path = run_dir(root, "music/jsb", "gru", BEST, seed) / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics[key] = None  # as write_metrics records a NaN
    path.write_text(json.dumps(metrics))


def _gru(rows):
    return next(r for r in rows if r.unit == "gru")


def test_completed_seed_without_test_nll_is_not_counted_and_is_named(tmp_path: Path) -> None:
    _fill(tmp_path)
    write_fake_run(tmp_path, "music/jsb", "gru", BEST, 2, valid_nll=3.0, status="completed")
    _drop_metric(tmp_path, 2, "test_nll")
    results = collect(tmp_path, _protocol())
    assert results.missing == []  # the run finished: the sweep is complete, yet it has no value
    rows = table2_rows(results)
    gru = _gru(rows)
    assert gru.n_seeds == 2
    # fake NLLs: test = valid + 0.1 + 0.01 seed, train = valid - 0.3 + 0.01 seed; seeds 1 and 3
    assert gru.test_nll_mean == pytest.approx(3.1 + 0.02)
    assert gru.train_nll_mean == pytest.approx(2.7 + 0.02)  # the same seeds as the test mean
    assert "not counted: seed 2 (`completed`, no test_nll)" in gru.note
    assert all(r.n_seeds == 3 and "not counted" not in r.note for r in rows if r.unit != "gru")

    markdown = table2_markdown(rows, protocol_name="test", incomplete=False)
    line = next(x for x in markdown.splitlines() if x.startswith("| JSB Chorales | GRU |"))
    cells = [c.strip() for c in line.split("|")]
    seeds, note = (cells[1 + COLUMNS.index(name)] for name in ("seeds", "note"))
    assert seeds == "2" and "seed 2 (`completed`, no test_nll)" in note
    (csv_gru,) = [r for r in csv.DictReader(io.StringIO(table2_csv(rows))) if r["unit"] == "gru"]
    assert csv_gru["n_seeds"] == "2" and "not counted: seed 2" in csv_gru["note"]


def test_missing_and_unfinished_seed_runs_are_named_not_counted(tmp_path: Path) -> None:
    _fill(tmp_path, skip_seed=3)
    write_fake_run(tmp_path, "music/jsb", "gru", BEST, 2, valid_nll=3.0, status="running")
    _drop_metric(tmp_path, 1, "train_nll")  # the search run too lacks a value
    rows = table2_rows(collect(tmp_path, _protocol()))
    gru = _gru(rows)
    assert gru.n_seeds == 0
    assert (
        "not counted: seed 1 (`early_stopped`, no train_nll), seed 2 (`running`, unfinished), "
        "seed 3 (not run)"
    ) in gru.note
    build_reports(tmp_path, tmp_path / "out", _protocol(), allow_incomplete=True)
    table = (tmp_path / "out" / "table2.md").read_text()
    assert "seed 3 (not run)" in table and "| 0 |" in table


@pytest.mark.artifacts
@pytest.mark.parametrize(
    "folder",
    [
        "results",
        "results/quick",
        "results/released",
        "results/released_optim",
        "results/speech_whole",
    ],
)
def test_committed_tables_rebuild_byte_for_byte(folder: str) -> None:
    """No finished seed run is left out of the committed tables (seeds still to run, as in a
    sweep under way, are named in the note), and the tables rebuild byte for byte."""
    out = REPO_ROOT / folder
    runs, name = {
        "results": ("results/runs", "full"),
        "results/released": ("results/runs", "released-exact"),
        "results/released_optim": ("results/runs", "full-released-optim"),  # what it replaced
        "results/quick": ("results/quick/runs", "quick"),
        "results/speech_whole": ("results/speech_whole/runs", "full"),  # under way
    }[folder]
    protocol = Protocol.load(REPO_ROOT / runs, name)
    if folder == "results/speech_whole":  # its root trains the speech experiments only
        protocol = protocol.only(["speech/a", "speech/b"])
    results = collect(REPO_ROOT / runs, protocol)
    rows = table2_rows(results)
    left_out = [
        why
        for exp in results.experiments
        for unit_result in exp.units.values()
        for why in counted_seed_runs(unit_result)[2]
    ]
    assert all(why.endswith("(not run)") for why in left_out), left_out
    incomplete = bool(results.missing)
    markdown = table2_markdown(rows, protocol_name=protocol.name, incomplete=incomplete)
    assert markdown == (out / "table2.md").read_text(encoding="utf-8")
    assert table2_csv(rows) == (out / "table2.csv").read_text(encoding="utf-8")
    assert lr_search_markdown(results) == (out / "lr_search.md").read_text(encoding="utf-8")
