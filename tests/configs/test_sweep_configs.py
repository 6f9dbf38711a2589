"""The search grids and the experiment files: the seeded LR draw, each protocol's experiments,
deterministic run folders."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from gru_repro import config_dir
from gru_repro.config.checks import ConfigError
from gru_repro.config.store import compose_run, experiment_sweep, package_configs
from gru_repro.reports.lr_candidates import (
    LOG_LR_HIGH,
    LOG_LR_LOW,
    draw_lr_candidates,
    read_lr_grid,
    write_lr_grid,
)
from gru_repro.reports.protocol import (
    EXPERIMENTS,
    MUSIC_EXPERIMENTS,
    OPTIMIZERS,
    QUICK_EXPERIMENTS,
    SPEECH_DATA,
    UNITS,
    full_protocol,
    lr_dirname,
    quick_protocol,
)
from gru_repro.train import planned_folders

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = config_dir()
SEARCH_DIR = CONFIG_DIR / "search"
DATA_OF = {
    "music/jsb": "jsb",
    "music/nottingham": "nottingham",
    "music/musedata": "musedata",
    "music/piano_midi": "piano_midi",
    "speech/a": "speech_a",
    "speech/b": "speech_b",
}
# every experiment file a protocol trains -> the search grid it sweeps (configs/search/)
PROTOCOL_FILES = {
    **{name: "paper" for name in MUSIC_EXPERIMENTS},
    **{name: "paper" for names in SPEECH_DATA.values() for name in names},
    **{name: "paper" for name in OPTIMIZERS["released"].music},
    **{name: "paper" for name in OPTIMIZERS["released-exact"].music},
    **{name: "quick" for name in QUICK_EXPERIMENTS},
}
# run groups of their own (the released-exact protocol's released/<set>) -> the Table 2
# experiment their runs report as
REPORTS_AS = {
    plan.experiment: plan.reports_as for plan in full_protocol(optim="released-exact").experiments
}


def test_draw_is_seeded_sorted_and_in_the_papers_range() -> None:
    lrs = draw_lr_candidates()
    assert lrs == draw_lr_candidates()  # the same 10 values every time
    assert len(lrs) == 10 and lrs == sorted(lrs) and len(set(lrs)) == 10
    low, high = math.exp(LOG_LR_LOW), math.exp(LOG_LR_HIGH)
    assert all(low * (1 - 5e-3) <= lr <= high * (1 + 5e-3) for lr in lrs)
    assert draw_lr_candidates(seed=1) != lrs  # the seed matters


def test_the_search_grids_hold_the_seeded_draw() -> None:
    assert read_lr_grid(SEARCH_DIR / "paper.yaml") == draw_lr_candidates()
    quick = read_lr_grid(SEARCH_DIR / "quick.yaml")
    assert quick == draw_lr_candidates()[5::2]  # candidates 6, 8, 10: the larger rates


def test_a_search_file_without_a_rate_sweep_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "none.yaml"
    empty.write_text("# @package hydra.sweeper.params\nmodel: gru  # one unit\n")
    with pytest.raises(ValueError, match=r"none\.yaml: no `optim\.lr:` sweep"):
        read_lr_grid(empty)
    words = tmp_path / "words.yaml"
    words.write_text("optim.lr: fast,slow  # not numbers\n")
    with pytest.raises(ValueError, match=r"words\.yaml: optim\.lr sweep 'fast,slow'"):
        read_lr_grid(words)


@pytest.mark.artifacts
@pytest.mark.subprocess
def test_draw_script_check_and_rewrite(tmp_path: Path) -> None:
    script = [sys.executable, str(REPO_ROOT / "scripts" / "draw_lr_candidates.py")]
    assert subprocess.run(script + ["--check"], capture_output=True).returncode == 0
    # A stale copy is caught by --check and repaired by a plain run, its comments kept.
    paper = tmp_path / "paper.yaml"
    paper.write_text((SEARCH_DIR / "paper.yaml").read_text())
    write_lr_grid(paper, [1e-3, 2e-3])
    assert read_lr_grid(paper) == [1e-3, 2e-3]
    args = ["--config-dir", str(tmp_path)]
    check = subprocess.run(script + ["--check", *args], capture_output=True, text=True)
    assert check.returncode == 1 and "paper.yaml (not the draw)" in check.stderr
    assert subprocess.run(script + args, capture_output=True).returncode == 0
    assert paper.read_text() == (SEARCH_DIR / "paper.yaml").read_text()
    # A subset grid with a rate outside the draw is caught, and left for a person to fix.
    quick = tmp_path / "quick.yaml"
    quick.write_text((SEARCH_DIR / "quick.yaml").read_text())
    write_lr_grid(quick, [1e-3])
    check = subprocess.run(script + args, capture_output=True, text=True)
    assert check.returncode == 1 and "quick.yaml (rates outside the draw)" in check.stderr
    assert read_lr_grid(quick) == [1e-3]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(PROTOCOL_FILES))
def test_experiment_composes_with_its_grid_and_run_folder(experiment: str) -> None:
    sweep = experiment_sweep(experiment)
    reported = REPORTS_AS.get(sweep.run_group, sweep.run_group)
    assert reported in EXPERIMENTS  # its runs report as one of Table 2's experiments
    assert sweep.units == UNITS
    assert list(sweep.lrs) == read_lr_grid(SEARCH_DIR / f"{PROTOCOL_FILES[experiment]}.yaml")
    lr = sweep.lrs[-1]
    planned = planned_folders([f"experiment={experiment}"], list(UNITS), [lr], [1])
    optim = "rmsprop_released" if experiment.startswith("released") else "rmsprop"
    with package_configs():
        for unit in UNITS:
            cfg = compose_run([f"experiment={experiment}", f"model={unit}", f"optim.lr={lr}"])
            assert cfg.data.name == DATA_OF[reported]
            assert cfg.model.unit == unit and cfg.seed == 1 and cfg.optim.name == optim
            # readable names, then the identity hash: the folder planned_folders predicts
            assert cfg.hydra.sweep.dir == f"{cfg.paths.output_root}/{sweep.run_group}"
            subdir = f"{unit}/{optim}/{lr_dirname(lr)}/seed=1-"
            assert cfg.hydra.sweep.subdir.startswith(subdir)
            assert cfg.hydra.run.dir == f"{cfg.hydra.sweep.dir}/{cfg.hydra.sweep.subdir}"
            assert planned[unit, lr, 1] == f"{sweep.run_group}/{cfg.hydra.sweep.subdir}"


def test_a_single_run_experiment_is_no_protocol_experiment() -> None:
    with pytest.raises(ConfigError, match=r"ablation/nottingham_gru_600_epochs\.yaml sets no"):
        experiment_sweep("ablation/nottingham_gru_600_epochs")


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["speech/a", "speech/b", "speech/a_subset"])
def test_speech_experiments_give_the_papers_speech_sizes(experiment: str) -> None:
    from gru_repro.models import build_model

    expected = {"tanh": 400, "gru": 227, "lstm": 195}  # paper Table 1, speech
    with package_configs():
        for unit, hidden in expected.items():
            cfg = compose_run([f"experiment={experiment}", f"model={unit}"])
            options = dict(cfg.model)
            options.pop("unit")
            model = build_model(unit, 20, 10, **options)  # 20 samples in, 10 predicted
            assert model.rnn.hidden_size == hidden, unit


@pytest.mark.slow
def test_the_speech_subsets_are_the_documented_cpu_sizes() -> None:
    """docs/speech.md's reduced CPU protocol: a seeded tenth of the data, 100 epochs; the whole
    experiments keep all of FSDD and the default budget."""
    sizes = {}
    with package_configs():
        for name in (*SPEECH_DATA["subset"], *SPEECH_DATA["whole"]):
            cfg = compose_run([f"experiment={name}"])
            sizes[name] = (
                cfg.data.max_sequences,
                cfg.data.max_eval_sequences,
                cfg.trainer.max_epochs,
            )
    assert sizes == {
        "speech/a_subset": (600, 200, 100),
        "speech/b_subset": (64, 24, 100),
        "speech/a": (None, None, 200),
        "speech/b": (None, None, 200),
    }


@pytest.mark.slow
def test_protocols_name_the_experiment_files() -> None:
    full = full_protocol()
    assert [p.experiment for p in full.experiments] == list(EXPERIMENTS)
    assert [p.config for p in full.experiments] == [*MUSIC_EXPERIMENTS, *SPEECH_DATA["subset"]]
    assert all(p.lrs == tuple(draw_lr_candidates()) for p in full.experiments)
    assert all(p.seeds == (1, 2, 3) and not p.overrides for p in full.experiments)
    speech = {p.experiment: p.changes for p in full.experiments if p.experiment != p.config}
    assert speech == {  # Table 2 names the file a changed row was trained with
        "speech/a": ("experiment=speech/a_subset",),
        "speech/b": ("experiment=speech/b_subset",),
    }
    whole = full_protocol(speech="whole")
    assert all(p.config == p.experiment and not p.changes for p in whole.experiments)
    with pytest.raises(ValueError, match="speech data 'all'"):
        full_protocol(speech="all")
    released = full_protocol(optim="released")
    assert [p.experiment for p in released.experiments] == list(MUSIC_EXPERIMENTS)
    assert [p.config for p in released.experiments] == [
        name.replace("music/", "released_optim/") for name in MUSIC_EXPERIMENTS
    ]
    assert all(p.lrs == tuple(draw_lr_candidates()) for p in released.experiments)
    assert released.name != full.name  # its reports must not pass for the paper's optimizer
    with pytest.raises(ValueError, match="optimizer 'adam'"):
        full_protocol(optim="adam")
    quick = quick_protocol()
    assert [p.config for p in quick.experiments] == list(QUICK_EXPERIMENTS)
    assert [p.experiment for p in quick.experiments] == [
        "music/jsb",
        "music/nottingham",
        "speech/a",
    ]
    assert all(set(p.lrs) < set(draw_lr_candidates()) for p in quick.experiments)
    assert all(p.seeds == (1, 2) for p in quick.experiments)
