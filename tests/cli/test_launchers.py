"""Launcher configs compose, and a two-run sweep goes through submitit's local executor.

`hydra/launcher=submitit_local` runs the same code path as `hydra/launcher=slurm` (pickled
jobs, submitit folders, result files) without a cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gru_repro import config_dir
from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import collect
from gru_repro.reports.protocol import ExperimentPlan, Protocol
from gru_repro.train import planned_folders

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(config_dir())


def _launcher(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return cfg.hydra.launcher


def test_local_launcher_is_joblib_on_all_cores() -> None:
    launcher = _launcher("hydra/launcher=local", "experiment=music/jsb")
    assert launcher._target_.endswith("JoblibLauncher")
    assert launcher.n_jobs == -1 and launcher.backend == "loky"
    assert _launcher("hydra/launcher=local", "hydra.launcher.n_jobs=3").n_jobs == 3


def test_slurm_launcher_keys_are_overridable() -> None:
    default = _launcher("hydra/launcher=slurm")
    assert default._target_.endswith("SlurmLauncher")
    assert default.cpus_per_task == 1 and default.partition is None
    assert "export OMP_NUM_THREADS=1" in default.setup
    custom = _launcher(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=cpu",
        "hydra.launcher.timeout_min=60",
        "hydra.launcher.cpus_per_task=2",
        "hydra.launcher.mem_gb=16",
    )
    assert (custom.partition, custom.timeout_min, custom.cpus_per_task, custom.mem_gb) == (
        "cpu",
        60,
        2,
        16,
    )


@pytest.mark.subprocess
@pytest.mark.timeout(180)
def test_two_job_sweep_through_submitit_local(tmp_path: Path) -> None:
    lr = 0.00134  # one of the seeded candidates
    command = [
        sys.executable, "-m", "gru_repro.train", "-m",
        "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=3",
        "experiment=music/jsb", "data=synthetic", "data.n_train=16", "data.n_valid=8",
        "data.n_test=8", "model=tanh,gru", f"optim.lr={lr}", "trainer.max_epochs=1",
        f"paths.output_root={tmp_path}",
    ]  # fmt: skip
    env = dict(os.environ, CI="1")
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=170, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "music" / "jsb"
    assert any((sweep_dir / ".submitit").iterdir())  # went through submitit, not in-process
    overrides = command[command.index("experiment=music/jsb") :]
    overrides = [o for o in overrides if not o.startswith(("model=", "optim.lr=", "paths."))]
    folders = planned_folders(overrides, ["tanh", "gru"], [lr], [1])
    for unit in ("tanh", "gru"):  # exactly where the entry point says it trains them
        assert (tmp_path / folders[unit, lr, 1] / "metrics.json").is_file()

    # The reports read these real run folders like any other.
    plan = ExperimentPlan("music/jsb", units=("tanh", "gru"), lrs=(lr,), seeds=(1,))
    plan = plan.with_folders(lambda _: folders)
    protocol = Protocol("launcher-test", (plan,))
    results = collect(tmp_path, protocol)
    assert results.missing == []
    assert {u.selected_lr for u in results.experiments[0].units.values()} == {lr}
    build_reports(tmp_path, tmp_path / "results", protocol)
    table = (tmp_path / "results" / "table2.md").read_text()
    assert "| JSB Chorales | GRU |" in table and "frame-weighted" in table
