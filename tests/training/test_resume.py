"""A run killed with SIGKILL mid-training and rerun with the same command ends with exactly the
numbers of an uninterrupted run (CPU, same seed)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gru_repro.train import CONFIG_DIR, run

pytestmark = pytest.mark.subprocess

OVERRIDES = [
    "model=gru",
    "model.hidden_size=12",
    "optim=rmsprop_released",
    "optim.lr=0.003",
    "trainer.max_epochs=40",
    "trainer.patience=0",
    "trainer.batch_size=8",
    "data.n_train=32",
]  # fmt: skip  -- ~40 x 4 noisy updates with a linear lr decay: a couple of seconds
VOLATILE = {"wall_seconds", "run_dir"}


def _curves(run_dir: Path) -> list[dict]:
    rows = list(csv.DictReader((run_dir / "curves.csv").open()))
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]


def _metrics(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def test_sigkill_then_rerun_gives_the_uninterrupted_metrics(tmp_path: Path) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=OVERRIDES)
    reference_dir = tmp_path / "reference"
    run(cfg, reference_dir)

    root = tmp_path / "outputs"
    command = [sys.executable, "-m", "gru_repro.train", f"paths.output_root={root}", *OVERRIDES]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dirs: list[Path] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        run_dirs = list(root.rglob("curves.csv"))
        if run_dirs and len(run_dirs[0].read_text().splitlines()) >= 5:  # epoch 3 done
            break
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    run_dir = run_dirs[0].parent
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "running"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from" in rerun.stdout + rerun.stderr
    assert _metrics(run_dir) == _metrics(reference_dir)
    assert _curves(run_dir) == _curves(reference_dir)
    assert _metrics(run_dir)["status"] == "completed"

    assert run(cfg, run_dir) is None  # finished now: a third run of the command skips it
