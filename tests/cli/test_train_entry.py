"""The Hydra entry point: a one-epoch run per unit writes every run file; finished runs are
skipped; config errors are one line and exit code 2."""

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
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gru_repro.config import ConfigError
from gru_repro.config.store import identity_of
from gru_repro.train import run

METRIC_KEYS = {
    "dataset", "unit", "hidden_size", "n_params_recurrent", "n_params_total", "lr", "seed",
    "optim", "epochs", "updates", "wall_seconds", "best_epoch", "train_nll", "valid_nll",
    "test_nll", "status", "git_commit", "nll_convention", "train_nll_seqavg",
    "valid_nll_seqavg", "test_nll_seqavg", "train_nll_allframes", "valid_nll_allframes",
    "test_nll_allframes", "batch_size", "max_epochs", "patience", "eval_every", "weight_noise",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_one_epoch_run_writes_every_run_file(unit: str, tmp_path: Path) -> None:
    cfg = small_config(f"model={unit}")
    metrics = run(cfg, tmp_path)

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert METRIC_KEYS <= set(on_disk) and on_disk == json.loads(json.dumps(metrics))
    assert on_disk["status"] == "completed" and on_disk["unit"] == unit
    assert on_disk["dataset"] == "synthetic" and on_disk["epochs"] == 1
    assert on_disk["updates"] == 2 and on_disk["best_epoch"] == 1
    for split in ("train", "valid", "test"):
        assert 0 < on_disk[f"{split}_nll_allframes"] < on_disk[f"{split}_nll"]

    rows = list(csv.DictReader((tmp_path / "curves.csv").open()))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert list(rows[0]) == ["epoch", "updates", "wall_seconds", "train_nll", "valid_nll"]
    assert float(rows[1]["valid_nll"]) == pytest.approx(on_disk["valid_nll"])

    for name in ("best.pt", "last.pt"):
        bundle = torch.load(tmp_path / "checkpoints" / name, weights_only=True)
        assert bundle["config"]["model"]["unit"] == unit
        assert bundle["input_size"] == bundle["output_size"] == 24
        assert "rnn.weight_hh" in bundle["model"]
    assert {"optimizer", "rng", "early_stopping", "shuffle_generator"} <= set(
        torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    )

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/nll", "valid/nll", "train/grad_norm", "train/lr"} <= tags
    assert "with_best_weights/test_nll" in tags  # the final metrics, sorted after the curves
    assert "_hparams_/experiment" in events.PluginTagToContent("hparams")
    assert [e.step for e in events.Scalars("valid/nll")] == [0, 2]  # against updates
    assert all(e.wall_time > 1e9 for e in events.Scalars("train/nll"))  # unix time recorded
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["checkpoints"]  # no subruns


def test_finished_run_is_skipped_unless_forced(tmp_path: Path) -> None:
    cfg = small_config()
    first = run(cfg, tmp_path)
    assert run(cfg, tmp_path) is None  # already finished: nothing trained
    again = run(small_config("trainer.force=true"), tmp_path)
    assert again["valid_nll"] == first["valid_nll"]  # a fresh, identical run


def _entry(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "gru_repro.train", f"paths.output_root={tmp_path}", *overrides],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.subprocess
def test_config_errors_are_one_line_and_exit_code_2(tmp_path: Path) -> None:
    for override, words in [
        ("model.unit=cnn", "cnn"),
        ("trainer.weight_noise=-0.5", "trainer.weight_noise"),
    ]:
        result = _entry(tmp_path, override)
        assert result.returncode == 2, result.stderr
        error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and words in error_lines[0]
        assert "Traceback" not in result.stderr
        assert not list(tmp_path.rglob("*.pt"))  # nothing trained


@pytest.mark.slow
def test_a_run_made_with_another_config_is_refused_not_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    run(small_config(), folder)  # plain RMSProp, finished
    released = small_config("optim=rmsprop_released")
    with pytest.raises(ConfigError, match=r"optim\.name 'rmsprop' -> 'rmsprop_released'"):
        run(released, folder)  # was: "already finished", plain-RMSProp numbers for the released
    mark_interrupted(folder)
    with pytest.raises(ConfigError, match="trainer.force=true"):
        run(released, folder)  # was: KeyError 'velocity' loading the optimizer state
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs"):
        run(small_config("trainer.max_epochs=2"), folder)

    # keys an invocation may change: same config otherwise, so it still resumes / skips
    same = small_config("trainer.threads=2", "trainer.progress=false", "paths.output_root=x")
    assert run(same, folder)["status"] == "completed"  # resumed the interrupted run
    assert run(same, folder) is None

    # trainer.force=true retrains from scratch: the numbers of a fresh run in an empty folder
    forced = run(small_config("optim=rmsprop_released", "trainer.force=true"), folder)
    fresh = run(released, tmp_path / "fresh")
    assert forced["valid_nll"] == fresh["valid_nll"] and forced["optim"] == "rmsprop_released"
    saved = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    assert saved["config"]["optim"]["name"] == "rmsprop_released"
    assert run(released, folder) is None  # now the released run's folder: skipped
    with pytest.raises(ConfigError, match=r"optim\.name"):
        run(small_config(), folder)


def test_a_finished_run_without_checkpoints_is_checked_by_its_identity(tmp_path) -> None:
    cfg = small_config()  # a run that diverged before its first checkpoint left only metrics
    identity = identity_of(cfg)
    metrics = {"status": "diverged", "identity": identity, "lr": cfg.optim.lr}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert run(cfg, tmp_path) is None
    with pytest.raises(ConfigError, match=r"optim\.lr 0\.001 -> 0\.5"):
        run(small_config("optim.lr=0.5"), tmp_path)
    # a run-only key is not part of the identity: still the same run, still skipped
    assert run(small_config("trainer.eval_batch_size=3", "trainer.log_every=5"), tmp_path) is None


@pytest.mark.subprocess
def test_the_entry_refuses_another_configs_run_folder_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    run(small_config(), folder)
    for state in ("finished", "interrupted"):
        if state == "interrupted":
            mark_interrupted(folder)
        result = _entry(tmp_path, f"hydra.run.dir={folder}", *_SMALL, "optim=rmsprop_released")
        assert result.returncode == 2, (state, result.stderr[-2000:])
        error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1, result.stderr
        assert "optim.name" in error_lines[0] and "trainer.force=true" in error_lines[0]
        assert "another folder" in error_lines[0]
        assert "Traceback" not in result.stderr


_SMALL = [
    "data.n_train=8",
    "data.n_valid=4",
    "data.n_test=4",
    "data.max_length=20",
    "trainer.max_epochs=1",
    "trainer.batch_size=4",
]  # fmt: skip  -- small_config's overrides, for the entry on the command line
