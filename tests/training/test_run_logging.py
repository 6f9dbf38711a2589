"""Every console log line of a run names the run, so the interleaved lines of parallel sweeps
(scripts/reproduce.py writes them to one sweeps-*.log) can be told apart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

REPO_ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\[[^]]+\]\[(?P<run>[^]]+)\]\[gru_repro\.[\w.]+\]\[INFO\] - (?P<text>.*)$")


@pytest.mark.timeout(240)
def test_sweep_log_lines_name_their_run(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "gru_repro.train", "-m", "experiment=music/jsb", "data=synthetic",
        "data.n_train=8", "data.n_valid=4", "data.n_test=4", "data.max_length=20",
        "trainer.max_epochs=1", "trainer.batch_size=4", "model=tanh,gru", "optim.lr=0.00134",
        f"paths.output_root={tmp_path}",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        env=dict(os.environ, CI="1"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [m for m in map(LINE.match, (done.stdout + done.stderr).splitlines()) if m]
    epochs = [(m["run"], m["text"]) for m in lines if m["text"].startswith("epoch 1 ")]
    # the run folder below the sweep dir (music/jsb): <unit>/<optim>/lr=<lr>/seed=<seed>-<hash>
    runs = sorted(run for run, _ in epochs)
    assert [run.rsplit("-", 1)[0] for run in runs] == [
        "gru/rmsprop/lr=0.00134/seed=1",
        "tanh/rmsprop/lr=0.00134/seed=1",
    ]
    for run in runs:
        own_log = tmp_path / "music" / "jsb" / run / "train.log"
        assert "epoch 1 " in own_log.read_text()  # the run's own file keeps Hydra's format
        assert f"[{run}]" not in own_log.read_text()
