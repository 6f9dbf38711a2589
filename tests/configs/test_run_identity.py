"""Run identity, run-folder locks and sweeps that go on: nothing lost, nothing silently mixed,
every failure named. Subprocess runs on real JSB data (a few epochs) where the entry point and
the launchers are what is tested; in-process runs on the synthetic set otherwise."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from small_runs import mark_interrupted, small_config

from gru_repro.config.identity import RUN_ONLY_KEYS, identity_hash
from gru_repro.config.store import identity_of
from gru_repro.train import planned_folders, run
from gru_repro.training.run_lock import RunFolderLock

REPO_ROOT = Path(__file__).resolve().parents[2]
JSB_SHORT = ["data=jsb", "model=gru", "trainer.max_epochs=2", "trainer.patience=0"]


def train(*overrides: str, output_root: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "gru_repro.train", *overrides, f"paths.output_root={output_root}"
    ]  # fmt: skip
    env = {**os.environ, "CI": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.subprocess
@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_a_bad_job_does_not_stop_the_sweep(launcher: str, tmp_path: Path) -> None:
    # one value out of range (caught by the schema's check), one of the wrong type (caught by
    # Hydra while composing that job), one good job that must run to the end
    done = train(
        "-m", *JSB_SHORT, "optim.lr=-1,abc,0.001", f"hydra/launcher={launcher}",
        output_root=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert "2 of 3 sweep job(s) failed" in done.stderr
    assert "optim.lr=-1.0 must be > 0" in done.stderr and "optim.lr: Value 'abc'" in done.stderr
    assert "Traceback" not in done.stderr

    (good,) = list(tmp_path.rglob("metrics.json"))
    metrics = json.loads(good.read_text())
    assert metrics["status"] == "completed" and metrics["lr"] == 0.001
    assert all(isinstance(metrics[f"{s}_nll"], float) for s in ("train", "valid", "test"))
    (summary,) = list((tmp_path / "jsb").glob("sweep-summary-*.json"))
    jobs = json.loads(summary.read_text())["jobs"]
    assert sorted(job["status"] for job in jobs) == ["completed", "config_error", "config_error"]
    assert [job["folder"] for job in jobs if job["status"] == "completed"] == [str(good.parent)]


@pytest.mark.subprocess
def test_a_sweep_over_any_key_gives_every_run_its_own_folder(tmp_path: Path) -> None:
    done = train(
        "-m", *JSB_SHORT[:-2], "trainer.max_epochs=1", "trainer.weight_noise=0,0.075",
        "trainer.batch_size=8,16", output_root=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(tmp_path.rglob("metrics.json"))
    assert len(runs) == 4 and len({p.parent for p in runs}) == 4  # was: 1 folder, 3 refused
    settings = set()
    for path in runs:
        metrics = json.loads(path.read_text())
        assert metrics["status"] == "completed" and metrics["identity_hash"] in str(path)
        assert metrics["identity_hash"] == identity_hash(metrics["identity"])
        trainer = metrics["identity"]["trainer"]
        settings.add((trainer["weight_noise"], trainer["batch_size"]))
    assert settings == {(0.0, 8), (0.0, 16), (0.075, 8), (0.075, 16)}
    # the entry point predicts every folder without training
    for noise in (0, 0.075):
        for batch in (8, 16):
            overrides = [*JSB_SHORT[:-2], "trainer.max_epochs=1"]
            overrides += [f"trainer.weight_noise={noise}", f"trainer.batch_size={batch}"]
            (folder,) = planned_folders(overrides, ["gru"], [0.001], [1]).values()
            assert (tmp_path / folder / "metrics.json") in runs


@pytest.mark.slow
def test_run_only_keys_leave_the_identity_and_the_folder_alone() -> None:
    base = identity_of(small_config())
    run_only = small_config(
        "trainer.threads=2", "trainer.progress=false", "trainer.eval_batch_size=3",
        "trainer.log_every=7", "trainer.resume=false", "trainer.force=true",
        "trainer.backend=python", "paths.output_root=elsewhere", "paths.data_dir=other",
        "paths.data_mirror=/x",
    )  # fmt: skip
    assert identity_of(run_only) == base
    assert "paths" not in base and "hydra" not in base and "data_dir" not in base["data"]
    assert {"trainer.threads", "paths", "data.mirror"} <= set(RUN_ONLY_KEYS)
    for changed in ("trainer.weight_noise=0", "seed=2", "data.n_train=9", "model=lstm"):
        other = identity_of(small_config(changed))
        assert other != base and identity_hash(other) != identity_hash(base), changed


@pytest.mark.subprocess
def test_a_locked_run_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with RunFolderLock(folder):  # another process is training here
        refused = train(*JSB_SHORT, f"hydra.run.dir={folder}", output_root=tmp_path)
    assert refused.returncode == 2, refused.stderr[-2000:]
    (line,) = error_lines(refused)
    assert "is in use by another process" in line and str(os.getpid()) in line
    assert not (folder / "metrics.json").exists() and not (folder / "checkpoints").exists()

    # a holder killed with SIGKILL leaves no stale lock: the kernel drops it with the process
    code = f"import os; from gru_repro.training.run_lock import RunFolderLock as L\n" \
           f"with L({str(folder)!r}): os.kill(os.getpid(), 9)"  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    with RunFolderLock(folder):
        pass


@pytest.mark.subprocess
def test_two_runs_forced_into_one_folder_never_both_finish_there(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    first = train(*JSB_SHORT, "seed=5", f"hydra.run.dir={folder}", output_root=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    second = train(*JSB_SHORT, "seed=6", f"hydra.run.dir={folder}", output_root=tmp_path)
    assert second.returncode == 2
    (line,) = error_lines(second)
    assert "holds another run (seed 5 -> 6)" in line and "trainer.force=true" in line
    assert json.loads((folder / "metrics.json").read_text())["seed"] == 5  # not overwritten


def _curves(folder: Path) -> list[dict]:
    return list(csv.DictReader((folder / "curves.csv").open()))


@pytest.mark.slow
def test_a_lost_best_checkpoint_fails_the_run_with_its_reason(tmp_path: Path) -> None:
    cfg = small_config("trainer.max_epochs=3", "trainer.patience=0")
    finished = run(cfg, tmp_path)
    best = tmp_path / "checkpoints" / "best.pt"
    for damage in ("truncate", "delete"):
        # killed after the final epoch's last.pt, then best.pt torn or lost
        mark_interrupted(tmp_path)
        best.write_bytes(best.read_bytes()[:100]) if damage == "truncate" else best.unlink()
        metrics = run(cfg, tmp_path)  # was: a traceback, then `completed` without any NLL
        assert metrics["status"] == "failed" and "best.pt" in metrics["failed_reason"]
        assert "trainer.force=true" in metrics["failed_reason"]
        assert not any(key.endswith("_nll") for key in metrics), metrics
        assert run(cfg, tmp_path) is None  # finished: skipped until forced
        if damage == "truncate":
            forced = run(small_config("trainer.max_epochs=3", "trainer.patience=0",
                                      "trainer.force=true"), tmp_path)  # fmt: skip
            assert forced["status"] == "completed" and forced["test_nll"] == finished["test_nll"]


def test_a_kill_after_the_final_checkpoint_leaves_every_curve_row(tmp_path: Path) -> None:
    cfg = small_config("trainer.max_epochs=3", "trainer.patience=0")
    finished = run(cfg, tmp_path)
    rows = _curves(tmp_path)
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    # the files a SIGKILL between last.pt and curves.csv of the last epoch leaves behind
    lines = (tmp_path / "curves.csv").read_text().splitlines(keepends=True)
    (tmp_path / "curves.csv").write_text("".join(lines[:-1]))
    mark_interrupted(tmp_path)
    rerun = run(cfg, tmp_path)
    assert _curves(tmp_path) == rows  # was: one row short for good
    assert rerun["status"] == "completed" and rerun["test_nll"] == finished["test_nll"]


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("data=nosuch", "data=nosuch: no such option; valid choices: audio_folder, jsb"),
        ("model=foo", "model=foo: no such option; valid choices: gru, lstm, tanh"),
        ("trainer.max_epoch=3", "unknown key trainer.max_epoch; valid keys: batch_size"),
        ("trainer.max_epochs=abc", "trainer.max_epochs: Value 'abc'"),
        ("optim.lr=abc", "optim.lr: Value 'abc'"),
        ("trainer.batch_size=2.5", "trainer.batch_size: Value '2.5'"),
        ("seed=abc", "seed: Value 'abc'"),
        ("data=midi_folder", "data.path is required"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be >= 1"),
        ("trainer.device=cuda" if not torch.cuda.is_available() else "model.init=x", "cuda"
         if not torch.cuda.is_available() else "model.init='x' must be one of paper, torch"),
    ],
)  # fmt: skip
def test_every_config_error_is_one_line_exit_2_and_writes_nothing(
    override: str, words: str, tmp_path: Path
) -> None:
    result = train("data=jsb", override, output_root=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = error_lines(result)
    assert line.startswith("error: ") and words in line, line
    assert not list(tmp_path.rglob("*.*")), "a config error wrote files"


@pytest.mark.subprocess
def test_a_rerun_removes_the_temp_files_of_killed_writers(tmp_path: Path) -> None:
    cfg = small_config("trainer.max_epochs=2", "trainer.patience=0")
    run(cfg, tmp_path)
    mark_interrupted(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    debris = [
        tmp_path / f".curves.csv.{dead}.ab12cd34.tmp.csv",
        tmp_path / "checkpoints" / f".last.pt.{dead}.ef56ab78.tmp.pt",
    ]
    live = tmp_path / f".metrics.json.{os.getpid()}.0123abcd.tmp.json"  # a live writer's
    for path in [*debris, live]:
        path.write_text("torn")
    assert run(cfg, tmp_path)["status"] == "completed"
    assert not any(path.exists() for path in debris) and live.exists()
