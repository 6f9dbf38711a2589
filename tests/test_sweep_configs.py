"""The experiment configs: the seeded LR draw, the sweep grid, deterministic run folders."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from gru_repro import config_dir
from gru_repro.reports.lr_candidates import (
    LOG_LR_HIGH,
    LOG_LR_LOW,
    draw_lr_candidates,
    read_lr_grid,
    write_lr_grid,
)
from gru_repro.reports.protocol import (
    EXPERIMENTS,
    UNITS,
    full_protocol,
    lr_dirname,
    quick_protocol,
)
from gru_repro.train import planned_folders

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = config_dir()
EXPERIMENT_DIR = CONFIG_DIR / "experiment"
SPEECH = ("speech/a", "speech/b")
DATA_OF = {
    "music/jsb": "jsb",
    "music/nottingham": "nottingham",
    "music/musedata": "musedata",
    "music/piano_midi": "piano_midi",
    "speech/a": "speech_a",
    "speech/b": "speech_b",
}


def test_draw_is_seeded_sorted_and_in_the_papers_range() -> None:
    lrs = draw_lr_candidates()
    assert lrs == draw_lr_candidates()  # the same 10 values every time
    assert len(lrs) == 10 and lrs == sorted(lrs) and len(set(lrs)) == 10
    low, high = math.exp(LOG_LR_LOW), math.exp(LOG_LR_HIGH)
    assert all(low * (1 - 5e-3) <= lr <= high * (1 + 5e-3) for lr in lrs)
    assert draw_lr_candidates(seed=1) != lrs  # the seed matters


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_every_experiment_holds_the_seeded_draw(experiment: str) -> None:
    assert read_lr_grid(EXPERIMENT_DIR / f"{experiment}.yaml") == draw_lr_candidates()


def test_draw_script_check_and_rewrite(tmp_path: Path) -> None:
    script = [sys.executable, str(REPO_ROOT / "scripts" / "draw_lr_candidates.py")]
    assert subprocess.run(script + ["--check"], capture_output=True).returncode == 0
    # A stale copy is caught by --check and repaired by a plain run.
    for group in ("music", "speech"):
        (tmp_path / group).mkdir()
    stale = tmp_path / "music" / "x.yaml"
    stale.write_text((EXPERIMENT_DIR / "music" / "jsb.yaml").read_text())
    write_lr_grid(stale, [1e-3, 2e-3])
    args = ["--config-dir", str(tmp_path)]
    check = subprocess.run(script + ["--check", *args], capture_output=True, text=True)
    assert check.returncode == 1 and "x.yaml" in check.stderr
    assert subprocess.run(script + args, capture_output=True).returncode == 0
    assert read_lr_grid(stale) == draw_lr_candidates()


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_experiment_composes_with_its_grid_and_run_folder(experiment: str) -> None:
    lr = draw_lr_candidates()[3]
    planned = planned_folders([f"experiment={experiment}"], list(UNITS), [lr], [1])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for unit in UNITS:
            cfg = compose(
                "train",
                overrides=[f"experiment={experiment}", f"model={unit}", f"optim.lr={lr}"],
                return_hydra_config=True,
            )
            HydraConfig.instance().set_config(cfg)
            assert cfg.data.name == DATA_OF[experiment]
            assert cfg.model.unit == unit and cfg.seed == 1
            params = cfg.hydra.sweeper.params
            assert params["model"] == "tanh,gru,lstm"
            assert [float(v) for v in params["optim.lr"].split(",")] == draw_lr_candidates()
            # readable names, then the identity hash: the folder planned_folders predicts
            assert cfg.hydra.sweep.dir == f"{cfg.paths.output_root}/{experiment}"
            subdir = f"{unit}/rmsprop/{lr_dirname(lr)}/seed=1-"
            assert cfg.hydra.sweep.subdir.startswith(subdir)
            assert cfg.hydra.run.dir == f"{cfg.hydra.sweep.dir}/{cfg.hydra.sweep.subdir}"
            assert planned[unit, lr, 1] == f"{experiment}/{cfg.hydra.sweep.subdir}"


@pytest.mark.parametrize("experiment", ["speech/a", "speech/b"])
def test_speech_experiments_give_the_papers_speech_sizes(experiment: str) -> None:
    from gru_repro.models import build_model

    expected = {"tanh": 400, "gru": 227, "lstm": 195}  # paper Table 1, speech
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for unit, hidden in expected.items():
            cfg = compose("train", overrides=[f"experiment={experiment}", f"model={unit}"])
            options = dict(cfg.model)
            options.pop("unit")
            model = build_model(unit, 20, 10, **options)  # 20 samples in, 10 predicted
            assert model.rnn.hidden_size == hidden, unit


def test_protocols_read_the_configs() -> None:
    full = full_protocol(EXPERIMENT_DIR)
    assert [p.experiment for p in full.experiments] == list(EXPERIMENTS)
    assert all(p.lrs == tuple(draw_lr_candidates()) for p in full.experiments)
    assert all(p.seeds == (1, 2, 3) for p in full.experiments)
    budget = "trainer.max_epochs=100"
    speech = {p.experiment: p.overrides for p in full.experiments if p.experiment in SPEECH}
    assert speech == {  # the documented reduced CPU sizes of docs/speech.md, by default
        "speech/a": ("data.max_sequences=600", "data.max_eval_sequences=200", budget),
        "speech/b": ("data.max_sequences=64", "data.max_eval_sequences=24", budget),
    }
    assert all(not p.overrides for p in full.experiments if p.experiment not in SPEECH)
    whole = full_protocol(EXPERIMENT_DIR, speech="whole")
    assert all(not p.overrides for p in whole.experiments)
    with pytest.raises(ValueError, match="speech data 'all'"):
        full_protocol(EXPERIMENT_DIR, speech="all")
    released = full_protocol(EXPERIMENT_DIR, optim="released")
    assert [p.experiment for p in released.experiments] == [
        name for name in EXPERIMENTS if name.startswith("music/")
    ]
    assert all(p.overrides == ("optim=rmsprop_released",) for p in released.experiments)
    assert all(p.lrs == tuple(draw_lr_candidates()) for p in released.experiments)
    assert released.name != full.name  # its reports must not pass for the paper's optimizer
    with pytest.raises(ValueError, match="optimizer 'adam'"):
        full_protocol(EXPERIMENT_DIR, optim="adam")
    quick = quick_protocol(EXPERIMENT_DIR)
    assert all(set(p.lrs) <= set(draw_lr_candidates()) for p in quick.experiments)
    assert all(len(p.seeds) >= 2 for p in quick.experiments)
