"""A population killed at any moment and rerun ends with every member's metrics equal to the
uninterrupted population's; finished members are skipped; members at different epochs (a
kill between two members' checkpoint writes, a member trained on alone) still end exact."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from exploding import change_training_forwards
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gru_repro.config.store import compose_run, package_configs
from gru_repro.data import load_splits
from gru_repro.data.splits import DataSplits
from gru_repro.train import planned_folders, run
from gru_repro.training import run_record
from gru_repro.training.loop import Trainer
from gru_repro.training.population.runs import POPULATION_FILE, population_dir, train_population
from gru_repro.training.population.trainer import Member
from gru_repro.training.settings import TrainerSettings

VOLATILE = {"wall_seconds", "run_dir", "machine"}
MAX_EPOCHS = 20
OVERRIDES = [
    "model=gru",
    "model.hidden_size=12",
    "optim=rmsprop_released",
    f"trainer.max_epochs={MAX_EPOCHS}",
    "trainer.patience=0",
    "trainer.batch_size=8",
    "data.n_train=32",
]  # fmt: skip  -- ~20 x 4 noisy updates per member with a linear lr decay: a few seconds
LRS = ("0.001", "0.003", "0.01")


def _metrics(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def _curves(run_dir: Path) -> list[dict]:
    rows = list(csv.DictReader((run_dir / "curves.csv").open()))
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]


def _members(root: Path) -> dict[str, Path]:
    return {p.parent.parent.name: p.parent for p in root.rglob("lr=*/seed=*/metrics.json")}


def _reference(root: Path) -> float:
    """The uninterrupted population, in this process, through the entry point's run();
    returns its wall time."""
    GlobalHydra.instance().clear()
    with package_configs():
        cfg = compose_run(
            [f"paths.output_root={root}", *OVERRIDES, f"optim.lr={LRS[0]}",
             f"trainer.population_lrs=[{','.join(LRS)}]"]
        )  # fmt: skip
        run_dir = Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir
        started = time.perf_counter()
        results = run(cfg, run_dir)
    assert [m["status"] for m in results] == ["completed"] * 3
    return time.perf_counter() - started


@pytest.mark.subprocess
def test_sigkill_at_a_random_moment_then_rerun_gives_the_uninterrupted_population(
    tmp_path: Path,
) -> None:
    seconds = _reference(tmp_path / "reference")
    reference = _members(tmp_path / "reference")
    assert sorted(reference) == sorted(f"lr={lr}" for lr in LRS)

    root = tmp_path / "outputs"
    command = [
        sys.executable, "-m", "gru_repro.train", "-m", f"paths.output_root={root}", *OVERRIDES,
        f"optim.lr={','.join(LRS)}", "trainer.population=auto",
    ]  # fmt: skip
    # a random moment: within a random epoch (after a random number of recorded epochs)
    rng = random.Random(os.urandom(8))
    epochs, delay = rng.randint(0, MAX_EPOCHS - 3), rng.uniform(0.0, seconds / MAX_EPOCHS)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any(len(p.read_text().splitlines()) >= 2 + epochs for p in root.rglob("curves.csv")):
            break
        time.sleep(0.002)
    time.sleep(delay)
    moment = f"killed after epoch {epochs} + {delay:.3f} s"
    assert process.poll() is None, f"the population ended before it was {moment}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = _members(root)
    assert any(_metrics(d)["status"] == "running" for d in killed.values()), moment

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    members = _members(root)
    assert sorted(members) == sorted(reference)
    for name, run_dir in members.items():
        assert _metrics(run_dir) == _metrics(reference[name]), (name, moment)
        assert _curves(run_dir) == _curves(reference[name]), (name, moment)
        assert not list(run_dir.rglob(".*.tmp*")), "temp files of the killed process remain"
    assert not list(root.rglob("population-*")), "the finished population's folder remains"
    # each member is in the folder its single run has, with the .hydra/ files Hydra writes
    singles = planned_folders([o for o in OVERRIDES if o != "model=gru"], ["gru"], LRS, [1])
    assert {root / folder for folder in singles.values()} == set(members.values())
    for name, run_dir in members.items():
        assert f"lr={OmegaConf.load(run_dir / '.hydra' / 'config.yaml').optim.lr}" == name
        log = (run_dir / "train.log").read_text()  # its own lines (the lead's: everyone's)
        assert f"{name}: epoch 1 " in log
        others = [f"{o}: epoch 1 " in log for o in members if o != name]
        assert not any(others) or name == f"lr={LRS[0]}"
    summary = json.loads(next(root.rglob("sweep-summary-*.json")).read_text())
    assert [job["status"] for job in summary["jobs"]] == ["completed"] * 3
    assert {Path(job["folder"]) for job in summary["jobs"]} == set(members.values())

    again = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr
    summary = sorted(root.rglob("sweep-summary-*.json"))[-1]
    assert [j["status"] for j in json.loads(summary.read_text())["jobs"]] == ["skipped"] * 3


# ---------------------------------------------------------------- in-process, on JSB
@pytest.fixture(scope="module")
def jsb(data_mirror, tmp_path_factory) -> DataSplits:
    splits = load_splits("jsb", data_dir=tmp_path_factory.mktemp("data"), mirror=data_mirror)
    return dataclasses.replace(
        splits, train=splits.train[:12], valid=splits.valid[:6], test=splits.test[:6]
    )


# exact products: the tests below compare members with folders trained as single runs bit for
# bit (the default batched products match single runs within float32 rounding only; the
# SIGKILL test above runs the default and compares populations with populations)
SETTINGS = TrainerSettings(
    batch_size=4, max_epochs=5, patience=0, progress=False, population_exact=True
)
MODEL = {"unit": "lstm", "hidden_size": 8}
OPTIM = {"name": "rmsprop", "lr": 0.0}
JSB_LRS = (0.003, 0.01, 0.03)


def _jsb_members(root: Path, lrs=JSB_LRS) -> list[Member]:
    return [Member(root / f"lr={lr}", lr, {}, {"lr": lr}) for lr in lrs]


def _train(jsb, members, settings=SETTINGS) -> list[dict]:
    return train_population(
        jsb, members=members, seed=1, model_options=MODEL, optim_options=OPTIM,
        settings=settings, run_info={"dataset": "jsb"}, folder=population_dir(members),
    )  # fmt: skip


def _assert_same(reference: Path, root: Path, lrs=JSB_LRS) -> None:
    for lr in lrs:
        assert _metrics(root / f"lr={lr}") == _metrics(reference / f"lr={lr}"), lr
        assert _curves(root / f"lr={lr}") == _curves(reference / f"lr={lr}"), lr


def test_a_kill_between_two_members_checkpoints_resumes_all_at_one_epoch(
    jsb, tmp_path, monkeypatch, caplog
) -> None:
    """Killed in epoch 3 after the population checkpoint and the first member's last.pt: the
    other members' last.pt are an epoch behind, the population checkpoint is not, and the
    rerun trains all members as one population from epoch 3."""
    _train(jsb, _jsb_members(tmp_path / "reference"))
    saves = []
    original = run_record.RunRecord.save_last

    def killed_after_one(self, last):
        if last["run_state"]["epoch"] == 3:
            if saves:
                raise KeyboardInterrupt  # stands for the kill
            saves.append(self.run_dir)
        original(self, last)

    monkeypatch.setattr(run_record.RunRecord, "save_last", killed_after_one)
    members = _jsb_members(tmp_path / "runs")
    with pytest.raises(KeyboardInterrupt):
        _train(jsb, members)
    monkeypatch.setattr(run_record.RunRecord, "save_last", original)
    epochs = [torch.load(m.run_dir / "checkpoints" / "last.pt")["epoch"] for m in members]
    assert epochs == [3, 2, 2] and (population_dir(members) / POPULATION_FILE).is_file()

    caplog.set_level("INFO")
    _train(jsb, members)
    assert "population of 3 resumed at epoch 3" in caplog.text
    _assert_same(tmp_path / "reference", tmp_path / "runs")
    assert not population_dir(members).exists() or not any(population_dir(members).glob("*.pt"))


def test_finished_members_are_skipped_and_a_member_ahead_trains_in_its_own_group(
    jsb, tmp_path, caplog
) -> None:
    """One member finished alone, one resumed alone to a later epoch (its single run crashed
    in epoch 3), one never started: the rerun skips the first, trains the other two from
    their own epochs, and every member ends as in the uninterrupted population."""
    _train(jsb, _jsb_members(tmp_path / "reference"))
    root = tmp_path / "runs"
    lrs = JSB_LRS
    Trainer(
        jsb, run_dir=root / f"lr={lrs[0]}", seed=1, model_options=MODEL,
        optim_options={**OPTIM, "lr": lrs[0]}, settings=SETTINGS, run_info={"dataset": "jsb"},
        identity={"lr": lrs[0]},
    ).fit()  # fmt: skip
    crashing = Trainer(
        jsb, run_dir=root / f"lr={lrs[1]}", seed=1, model_options=MODEL,
        optim_options={**OPTIM, "lr": lrs[1]}, settings=SETTINGS, run_info={"dataset": "jsb"},
        identity={"lr": lrs[1]},
    )  # fmt: skip

    def crash(n, output):
        if n == 8:  # update 2 of epoch 3
            raise KeyboardInterrupt
        return output

    change_training_forwards(crashing.model, crash)
    with pytest.raises(KeyboardInterrupt):
        crashing.fit()
    finished = (root / f"lr={lrs[0]}" / "metrics.json").read_bytes()

    from gru_repro.training import run_files

    members = [m for m in _jsb_members(root) if not run_files.is_finished(m.run_dir)]
    assert [m.lr for m in members] == list(lrs[1:])
    caplog.set_level("INFO")
    _train(jsb, members)
    assert "members ['lr=0.01'] resume at update 6" in caplog.text
    assert (root / f"lr={lrs[0]}" / "metrics.json").read_bytes() == finished
    _assert_same(tmp_path / "reference", root)


def test_a_member_killed_after_it_stopped_is_finalised_not_trained_on(
    jsb, tmp_path, monkeypatch
) -> None:
    """Patience 1: members stop early at different epochs. The kill comes as the first of them
    is finalised (its last.pt says it stopped, its metrics.json still says running); the rerun
    finalises it at once and trains the others on, all as in the uninterrupted population."""
    settings, lrs = dataclasses.replace(SETTINGS, patience=1), (0.001, 0.3, 3.0)
    reference = _train(jsb, _jsb_members(tmp_path / "reference", lrs), settings)
    epochs = [m["epochs"] for m in reference]
    assert min(epochs) < max(epochs) == SETTINGS.max_epochs, "the members should stop apart"
    original = run_record.RunRecord.finish

    def killed(self, t0, finals, **_):  # finish: other_finals too
        raise KeyboardInterrupt

    monkeypatch.setattr(run_record.RunRecord, "finish", killed)
    members = _jsb_members(tmp_path / "runs", lrs)
    with pytest.raises(KeyboardInterrupt):
        _train(jsb, members, settings)
    monkeypatch.setattr(run_record.RunRecord, "finish", original)
    assert [_metrics(m.run_dir)["status"] for m in members] == ["running"] * 3
    _train(jsb, members, settings)
    _assert_same(tmp_path / "reference", tmp_path / "runs", lrs)
