"""scripts/reproduce.py end to end with a stand-in trainer: resumable, diverged runs tolerated.

The stand-in reads the same Hydra overrides train.py gets (experiment=, a protocol file's own
overrides, paths.output_root=, model=a,b, optim.lr=..., seed=...) and writes run folders in the
documented format, skipping
finished ones as train.py does. It can kill itself and reproduce.py mid-sweep (SIGKILL), so
the test covers a sweep killed at an arbitrary point and rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gru_repro.reports.protocol import (
    ExperimentPlan,
    Protocol,
    protocol_path,
    reproduce_log_path,
)

pytestmark = pytest.mark.subprocess

REPO_ROOT = Path(__file__).resolve().parents[2]
HELPERS = REPO_ROOT / "tests" / "helpers"
LRS = (1e-4, 1e-3, 1e-2)

FAKE_TRAIN = r"""
import itertools, json, os, signal, sys
from pathlib import Path
from fake_runs import fake_valid_nll, write_fake_run
from gru_repro.train import planned_folders

args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
exp, root = args["experiment"], Path(args["paths.output_root"])
units, seeds = args["model"].split(","), [int(s) for s in args["seed"].split(",")]
lrs = [float(x) for x in args["optim.lr"].split(",")]
swept = ("paths.", "hydra", "model=", "optim.lr=", "seed=")
fixed = [a for a in sys.argv[1:] if "=" in a and not a.startswith(swept)]
folders = planned_folders(fixed, units, lrs, seeds)  # where train.py writes
best = {"tanh": 1e-4, "gru": 1e-3, "lstm": 1e-3}
counter = Path(os.environ["FAKE_COUNTER"])
for unit, lr, seed in itertools.product(units, lrs, seeds):
    folder = root / folders[unit, lr, seed]
    metrics = folder / "metrics.json"
    if metrics.is_file() and json.loads(metrics.read_text())["status"] != "running":
        continue  # finished: skipped, as train.py does
    with counter.open("a") as f:  # one byte per run started: safe with concurrent sweeps
        f.write("x")
    n = counter.stat().st_size
    if n == int(os.environ.get("FAKE_KILL_AT", "0")):
        write_fake_run(root, exp, unit, lr, seed, valid_nll=1.0, status="running", folder=folder)
        os.kill(os.getppid(), signal.SIGKILL)  # the whole sweep dies, reproduce.py included
        os.kill(os.getpid(), signal.SIGKILL)
    if n == int(os.environ.get("FAKE_CRASH_AT", "0")):
        write_fake_run(root, exp, unit, lr, seed, valid_nll=1.0, status="running", folder=folder)
        sys.exit(1)  # a crash: this sweep stops, reproduce.py goes on
    status = "diverged" if lr == 1e-2 and unit == "tanh" else "early_stopped"
    write_fake_run(root, exp, unit, lr, seed, valid_nll=fake_valid_nll(unit, lr, best[unit]),
                   status=status, folder=folder)
"""


def _reproduce(
    tmp_path: Path, name: str, *, kill_at: int = 0, crash_at: int = 0, plans: tuple = ()
) -> subprocess.CompletedProcess:
    fake = tmp_path / "fake_train.py"
    fake.write_text(FAKE_TRAIN)
    shutil.copy(HELPERS / "fake_runs.py", tmp_path)  # beside the script: importable
    protocol_file = protocol_path(tmp_path, "test")
    plans = plans or (ExperimentPlan("music/jsb", lrs=LRS, seeds=(1, 2, 3)),)
    Protocol("test", plans, "stand-in sweep").save(tmp_path)
    env = dict(
        os.environ,
        FAKE_COUNTER=str(tmp_path / f"{name}.count"),
        FAKE_KILL_AT=str(kill_at),
        FAKE_CRASH_AT=str(crash_at),
    )
    command = [
        sys.executable, str(REPO_ROOT / "scripts" / "reproduce.py"),
        "--protocol-file", str(protocol_file), "--skip-data",
        "--runs", str(tmp_path / name / "runs"), "--out", str(tmp_path / name / "results"),
        "--train-command", f"{sys.executable} {fake}",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _reports(tmp_path: Path, name: str) -> dict[str, str]:
    out = tmp_path / name / "results"
    return {f: (out / f).read_text() for f in ("table2.md", "table2.csv", "lr_search.md")}


def test_killed_and_rerun_sweep_ends_with_the_same_reports(tmp_path: Path) -> None:
    reference = _reproduce(tmp_path, "clean")
    assert reference.returncode == 0, reference.stdout + reference.stderr
    assert "done in" in reference.stdout
    expected = _reports(tmp_path, "clean")
    assert "diverged" in expected["lr_search.md"]  # tanh at 1e-2 diverged; the sweep went on
    assert "| JSB Chorales | GRU |" in expected["table2.md"]

    # Killed in the middle of the search of the first experiment (run 5 of 15).
    killed = _reproduce(tmp_path, "killed", kill_at=5)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "results" / "table2.md").exists()
    log_path = reproduce_log_path(tmp_path / "killed" / "runs", "test")
    assert json.loads(log_path.read_text())["invocations"] == 1  # recorded before the kill
    rerun = _reproduce(tmp_path, "killed")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert json.loads(log_path.read_text())["invocations"] == 2
    assert _reports(tmp_path, "killed") == expected

    # A third run launches nothing: every phase reports all runs done.
    count_before = (tmp_path / "killed.count").read_text()
    again = _reproduce(tmp_path, "killed")
    assert again.returncode == 0
    assert (tmp_path / "killed.count").read_text() == count_before
    assert "search 9/9 runs done" in again.stdout
    readme = (tmp_path / "killed" / "results" / "README.md").read_text()
    assert "total time" in readme and "scripts/reproduce.py" in readme

    # A crash in the search: no seed runs at a half-searched rate, reports marked incomplete,
    # exit 1 naming the runs; the rerun ends where the clean sweep did.
    crashed = _reproduce(tmp_path, "crashed", crash_at=2)
    assert crashed.returncode == 1
    assert "seeds wait for a rerun" in crashed.stdout
    assert "lr=0.001/seed=1" in crashed.stderr  # the crashed run is named
    assert not list((tmp_path / "crashed" / "runs").glob("music/jsb/*/*/*/seed=2-*"))
    assert "Incomplete sweep" in (tmp_path / "crashed" / "results" / "table2.md").read_text()
    assert _reproduce(tmp_path, "crashed").returncode == 0
    assert _reports(tmp_path, "crashed") == expected


def test_a_record_of_the_same_runs_is_kept_as_written(tmp_path: Path) -> None:
    """A protocol file written before the variants had experiment files names the base
    experiment and Hydra overrides; the experiment file plans the same runs, so a rerun trains
    none again and keeps that record byte for byte (the reports read it). A record of other
    runs is replaced."""
    caps = ("trainer.max_epochs=60", "trainer.patience=0")  # what quick/jsb.yaml changes
    old = ExperimentPlan("music/jsb", lrs=LRS, seeds=(1, 2), overrides=caps)
    runs = tmp_path / "same" / "runs"
    done = _reproduce(tmp_path, "same", plans=(old,))
    assert done.returncode == 0, done.stdout + done.stderr
    record = protocol_path(runs, "test").read_text()
    assert '"overrides": [\n        "trainer.max_epochs=60"' in record
    started = (tmp_path / "same.count").read_text()

    new = ExperimentPlan("music/jsb", config="quick/jsb", lrs=LRS, seeds=(1, 2))
    again = _reproduce(tmp_path, "same", plans=(new,))
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "same.count").read_text() == started  # nothing trained again
    assert protocol_path(runs, "test").read_text() == record

    fewer = ExperimentPlan("music/jsb", config="quick/jsb", lrs=LRS[:2], seeds=(1, 2))
    assert _reproduce(tmp_path, "same", plans=(fewer,)).returncode == 0
    rewritten = Protocol.load(runs, "test").experiments[0]
    assert (rewritten.config, rewritten.overrides, rewritten.lrs) == ("quick/jsb", (), LRS[:2])


@pytest.mark.slow
def test_reproduce_through_the_real_entry_and_joblib(tmp_path: Path) -> None:
    """The real pipeline on the synthetic set: joblib launcher, search, seeds, reports."""
    plan = ExperimentPlan("music/jsb", units=("tanh", "gru"), lrs=(1.34e-3, 1.74e-3), seeds=(1, 2))
    Protocol("synthetic", (plan,), "real entry, synthetic data").save(tmp_path)
    command = [
        sys.executable, str(REPO_ROOT / "scripts" / "reproduce.py"),
        "--protocol-file", str(protocol_path(tmp_path, "synthetic")), "--skip-data",
        "--launcher", "local",
        "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "results"),
        "--override", "data=synthetic", "--override", "trainer.max_epochs=1",
    ]  # fmt: skip
    env = dict(os.environ, CI="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    table = (tmp_path / "results" / "table2.md").read_text()
    assert "| JSB Chorales | GRU |" in table and "| 2 |" in table  # two seeds averaged
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "search 4/4 runs done" in again.stdout
    assert (tmp_path / "results" / "table2.md").read_text() == table
