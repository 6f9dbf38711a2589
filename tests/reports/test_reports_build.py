"""Reports from synthetic run folders: selection, Table 2, LR search, Figure 3, refusal."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from fake_runs import fake_valid_nll, write_fake_run

from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import IncompleteSweepError, collect, select_lr
from gru_repro.reports.protocol import ExperimentPlan, Protocol, run_dir
from gru_repro.reports.table2 import table2_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
LRS = (1e-4, 3e-4, 1e-3, 3e-3)
BEST = {"tanh": 1e-4, "gru": 1e-3, "lstm": 3e-4}  # the bowl's minimum per unit
DIVERGED = ("tanh", 3e-3)  # this candidate blows up


def _protocol() -> Protocol:
    plans = (
        ExperimentPlan("music/jsb", lrs=LRS, seeds=(1, 2, 3)),
        ExperimentPlan("speech/a", lrs=LRS, seeds=(1, 2, 3)),
    )
    return Protocol("test", plans, "tiny synthetic sweep")


def _fill(root: Path, protocol: Protocol, *, skip: set[tuple] = frozenset()) -> None:
    for plan in protocol.experiments:
        for unit in plan.units:
            for lr in plan.lrs:
                if (plan.experiment, unit, lr, 1) in skip:
                    continue
                status = "diverged" if (unit, lr) == DIVERGED else "early_stopped"
                valid = fake_valid_nll(unit, lr, BEST[unit])
                write_fake_run(root, plan.experiment, unit, lr, 1, valid_nll=valid, status=status)
            for seed in plan.seeds[1:]:
                if (plan.experiment, unit, BEST[unit], seed) in skip:
                    continue
                valid = fake_valid_nll(unit, BEST[unit], BEST[unit])
                write_fake_run(root, plan.experiment, unit, BEST[unit], seed, valid_nll=valid)


def test_selection_picks_lowest_valid_nll_and_ignores_diverged(tmp_path: Path) -> None:
    protocol = _protocol()
    _fill(tmp_path, protocol)
    # A diverged run with a tiny (bogus) valid NLL must never be selected.
    folder = run_dir(tmp_path, "music/jsb", "tanh", 3e-3, 1)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["valid_nll"] = 0.01
    (folder / "metrics.json").write_text(json.dumps(metrics))

    results = collect(tmp_path, protocol)
    assert results.missing == []
    for exp in results.experiments:
        for unit, unit_result in exp.units.items():
            assert unit_result.selected_lr == BEST[unit], (exp.plan.experiment, unit)
            assert sorted(unit_result.seed_runs) == [1, 2, 3]
    assert select_lr({}) is None


def test_table2_means_over_seeds_and_paper_difference(tmp_path: Path) -> None:
    protocol = _protocol()
    _fill(tmp_path, protocol)
    rows = {(r.experiment, r.unit): r for r in table2_rows(collect(tmp_path, protocol))}
    gru = rows[("music/jsb", "gru")]
    # fake test NLL = valid + 0.1 + 0.01 * seed, valid = 3.0 at the optimum (gru offset 0)
    expected = [3.0 + 0.1 + 0.01 * s for s in (1, 2, 3)]
    assert gru.n_seeds == 3
    assert gru.test_nll_mean == pytest.approx(sum(expected) / 3)
    assert gru.test_nll_std == pytest.approx(0.01)
    assert gru.paper_test_nll == 8.54
    assert gru.test_diff == pytest.approx(gru.test_nll_mean - 8.54)
    assert gru.selected_lr == 1e-3 and gru.epochs_mean == 4
    # speech: FSDD is not the paper's data, so no difference is claimed
    assert rows[("speech/a", "gru")].test_diff is None
    assert "FSDD" in rows[("speech/a", "gru")].note


@pytest.mark.slow
def test_reports_written_from_run_files(tmp_path: Path) -> None:
    protocol = _protocol()
    runs, out = tmp_path / "runs", tmp_path / "results"
    _fill(runs, protocol)
    written = build_reports(runs, out, protocol)
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["table2.md", "table2.csv", "lr_search.md", "figure3.png", "figure3_more.png", "README.md"]
    )
    table = (out / "table2.md").read_text()
    assert "| JSB Chorales | GRU | 6.94 | 2.72 ± 0.01 | -4.22 | 2.97 ± 0.01 | -3.97 |" in table
    assert "frame-weighted" in table  # the NLL convention travels from metrics.json
    with (out / "table2.csv").open() as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 6
    jsb_gru = next(r for r in csv_rows if r["experiment"] == "music/jsb" and r["unit"] == "gru")
    assert float(jsb_gru["selected_lr"]) == 1e-3 and jsb_gru["n_seeds"] == "3"
    assert (out / "figure3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Changing a run file changes the report: nothing is cached or typed in.
    folder = run_dir(runs, "music/jsb", "gru", 1e-3, 2)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["train_nll"] = 10.0
    (folder / "metrics.json").write_text(json.dumps(metrics))
    build_reports(runs, out, protocol)
    assert "| JSB Chorales | GRU | 6.94 | 2.72 ± 0.01 |" not in (out / "table2.md").read_text()


@pytest.mark.slow
def test_lr_search_shows_every_candidate_and_the_diverged_one(tmp_path: Path) -> None:
    protocol = _protocol()
    _fill(tmp_path / "runs", protocol)
    build_reports(tmp_path / "runs", tmp_path / "out", protocol)
    text = (tmp_path / "out" / "lr_search.md").read_text()
    jsb = text.split("## JSB Chorales")[1].split("## ")[0]
    rows = [line for line in jsb.splitlines() if line.startswith("| 0.")]
    assert len(rows) == len(LRS)
    row_3e3 = next(r for r in rows if r.startswith("| 0.003 |"))
    assert row_3e3.split("|")[2].strip().startswith("diverged")  # tanh column
    row_1e3 = next(r for r in rows if r.startswith("| 0.001 |"))
    assert "←" in row_1e3.split("|")[3]  # GRU selected at 1e-3
    expected = fake_valid_nll("lstm", 1e-4, BEST["lstm"]) + 0.01
    assert f"{expected:.3f}" in next(r for r in rows if r.startswith("| 0.0001 |"))


@pytest.mark.slow
def test_incomplete_sweep_refused_naming_missing_runs(tmp_path: Path) -> None:
    protocol = _protocol()
    runs = tmp_path / "runs"
    _fill(runs, protocol, skip={("music/jsb", "lstm", 3e-3, 1), ("speech/a", "gru", 1e-3, 3)})
    # an interrupted run: metrics.json still says running
    write_fake_run(runs, "speech/a", "tanh", 1e-4, 2, valid_nll=3.0, status="running")
    with pytest.raises(IncompleteSweepError) as err:
        build_reports(runs, tmp_path / "out", protocol)
    message = str(err.value)
    for folder in (
        run_dir(runs, "music/jsb", "lstm", 3e-3, 1),
        run_dir(runs, "speech/a", "gru", 1e-3, 3),
        run_dir(runs, "speech/a", "tanh", 1e-4, 2),
    ):
        assert str(folder) in message
    assert len(err.value.missing) == 3
    assert not (tmp_path / "out" / "table2.md").exists()

    build_reports(runs, tmp_path / "out", protocol, allow_incomplete=True)
    assert "Incomplete sweep" in (tmp_path / "out" / "table2.md").read_text()


@pytest.mark.subprocess
def test_make_reports_cli_refuses_then_allows(tmp_path: Path) -> None:
    protocol = _protocol()
    runs = tmp_path / "runs"
    _fill(runs, protocol, skip={("music/jsb", "gru", 1e-4, 1)})
    protocol.save(runs)
    script = [sys.executable, str(REPO_ROOT / "scripts" / "make_reports.py")]
    args = ["--runs", str(runs), "--out", str(tmp_path / "out")]
    refused = subprocess.run(script + args, capture_output=True, text=True)
    assert refused.returncode == 1
    assert str(run_dir(runs, "music/jsb", "gru", 1e-4, 1)) in refused.stderr
    allowed = subprocess.run(script + args + ["--allow-incomplete"], capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stderr
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "incomplete" in readme and "protocol: `test`" in readme


@pytest.mark.subprocess
def test_make_reports_only_reports_the_named_experiments(tmp_path: Path) -> None:
    """--only cuts the protocol to some experiments (a runs root that trains only those): the
    speech runs are all there, the music ones not, so it builds without --allow-incomplete; a
    name the protocol does not plan is refused with one line, exit 2, nothing written."""
    protocol = _protocol()
    runs = tmp_path / "runs"
    _fill(runs, protocol, skip={("music/jsb", "gru", 1e-4, 1)})
    protocol.save(runs)
    script = [sys.executable, str(REPO_ROOT / "scripts" / "make_reports.py"), "--runs", str(runs)]
    built = subprocess.run(
        script + ["--out", str(tmp_path / "out"), "--only", "speech/a"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    table = (tmp_path / "out" / "table2.md").read_text()
    assert "| Speech A | GRU |" in table and "JSB" not in table and "Incomplete" not in table
    refused = subprocess.run(
        script + ["--out", str(tmp_path / "none"), "--only", "speech/c"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: protocol 'test' plans no experiment 'speech/c': choose from music/jsb, speech/a"
    ]
    assert not (tmp_path / "none").exists()


def test_all_candidates_diverged_is_reported_not_crashing(tmp_path: Path) -> None:
    plan = ExperimentPlan("music/jsb", units=("tanh",), lrs=(1e-3, 1e-2), seeds=(1, 2))
    protocol = Protocol("test", (plan,))
    for lr in plan.lrs:
        write_fake_run(tmp_path, "music/jsb", "tanh", lr, 1, valid_nll=3.0, status="diverged")
    results = collect(tmp_path, protocol)
    assert results.missing == []  # diverged runs are finished; nothing to rerun
    (row,) = table2_rows(results)
    assert row.selected_lr is None and math.isnan(row.test_nll_mean)
    assert "diverg" in row.note


def _population_search_and_lone_seed_run(root: Path) -> Protocol:
    """The gru search as one population of len(LRS) members, each recording the population's
    wall time (100 s; the first member stopped early at 70 s), and seed 2 at the selected rate
    (1e-3) trained alone in 40 s."""
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=(1, 2))
    members = f"- trainer.population_lrs=[{','.join(map(str, LRS))}]\n"
    for i, lr in enumerate(LRS):
        folder = write_fake_run(
            root,
            "music/jsb",
            "gru",
            lr,
            1,
            valid_nll=fake_valid_nll("gru", lr, 1e-3),
            extra={"wall_seconds": 100.0 - 30.0 * (i == 0)},
        )
        (folder / ".hydra").mkdir(exist_ok=True)
        (folder / ".hydra" / "overrides.yaml").write_text(f"- model=gru\n{members}")
    write_fake_run(root, "music/jsb", "gru", 1e-3, 2, valid_nll=3.0, extra={"wall_seconds": 40.0})
    return Protocol("test", (plan,))


def test_compute_counts_each_population_process_once(tmp_path: Path) -> None:
    """A population's members each record the population's wall time: results/README.md's
    compute counts it once (its longest member), lone runs each in full."""
    protocol = _population_search_and_lone_seed_run(tmp_path)
    build_reports(tmp_path, tmp_path / "out", protocol)
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "each population process once): 0.04 h (140 s)" in readme  # 100 + 40, not 410


def test_table2_wall_time_per_run_shares_a_population_among_its_members(tmp_path: Path) -> None:
    """Seed 1 (a member of a population of 4, process 100 s) costs 100 / 4 = 25 s, seed 2
    (alone) 40 s: the row's wall time / run is their mean, not (100 + 40) / 2."""
    protocol = _population_search_and_lone_seed_run(tmp_path)
    (row,) = table2_rows(collect(tmp_path, protocol))
    assert row.selected_lr == 1e-3 and row.n_seeds == 2
    assert row.wall_seconds_mean == pytest.approx((100.0 / len(LRS) + 40.0) / 2)
