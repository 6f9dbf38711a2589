"""The released code's protocol as configs: experiment=released/<set> composes to it, the
Nottingham GRU chain changes one thing per step and ends at it, and the keys added for it leave
every earlier run's identity as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gru_repro.config.identity import identity_diff
from gru_repro.config.store import (
    compose_run,
    experiment_sweep,
    identity_of,
    package_configs,
    to_objects,
)
from gru_repro.train import planned_runs

SETS = ("nottingham", "jsb", "musedata", "piano_midi")
CHAIN = [
    "released_optim/nottingham",  # step 0 (with model=gru)
    "chain/nottingham_gru_1_sum_objective",
    "chain/nottingham_gru_2_update_cap",
    "chain/nottingham_gru_3_no_clipping",
    "chain/nottingham_gru_4_batch_1",
    "chain/nottingham_gru_5_500_epochs",
    "chain/nottingham_gru_6_noisy_selection",
]
# what each step changes in the run's identity (keys absent at their old behaviour: "<absent>")
CHANGES = [
    {"trainer.objective"},
    {"optim.max_update_norm"},
    {"trainer.clip_grad_norm"},
    {"trainer.batch_size", "trainer.weight_noise_per", "trainer.noisy_valid"},
    {"trainer.max_epochs", "trainer.patience"},
    {"trainer.select_on"},
]


def identity(*overrides: str) -> dict:
    with package_configs():
        return identity_of(compose_run(list(overrides)))


@pytest.mark.parametrize("name", SETS)
def test_the_released_experiments_are_the_released_protocol(name: str) -> None:
    with package_configs():
        cfg = compose_run([f"experiment=released/{name}"])
        config = to_objects(cfg)
    t, o = config.trainer, config.optim
    assert (t.batch_size, t.weight_noise_per, t.max_epochs, t.patience) == (1, "sequence", 500, 0)
    assert (t.objective, t.clip_grad_norm, t.weight_noise) == ("sum", None, 0.075)
    assert (t.noisy_valid, t.select_on, t.eval_with_noise, t.population) == (
        True, "clean", False, "auto",
    )  # fmt: skip
    assert (o.name, o.momentum, o.decay, o.rms_floor) == ("rmsprop_released", 0.9, 0.95, 0.01)
    assert (o.schedule, o.final_lr_fraction, o.max_update_norm) == ("linear", 0.01, 1.0)
    assert config.data.name == name
    sweep = experiment_sweep(f"released/{name}")
    assert sweep.run_group == f"released/{name}"
    assert sweep.units == ("tanh", "gru", "lstm") and len(sweep.lrs) == 10


def test_the_chain_changes_one_thing_per_step() -> None:
    identities = [identity(f"experiment={CHAIN[0]}", "model=gru")]
    identities += [identity(f"experiment={step}") for step in CHAIN[1:]]
    for k, (before, after) in enumerate(zip(identities, identities[1:], strict=False)):
        changed = {line.split(" ")[0] for line in identity_diff(before, after)}
        assert changed == CHANGES[k], (CHAIN[k + 1], identity_diff(before, after))


def test_chain_step_5_is_the_released_protocols_gru_search() -> None:
    """The same runs in the same folders: trained once for both."""
    lrs = list(experiment_sweep("released/nottingham").lrs)
    step5 = planned_runs(["experiment=chain/nottingham_gru_5_500_epochs"], ["gru"], lrs, [1])
    released = planned_runs(["experiment=released/nottingham"], ["gru"], lrs, [1])
    assert step5 == released
    assert experiment_sweep("chain/nottingham_gru_6_noisy_selection").units == ("gru",)


def test_added_keys_at_their_old_behaviour_leave_the_identity() -> None:
    """Runs from before the keys existed keep their identities (and folders); other values
    enter it (tests/configs/test_committed_identities.py checks the committed runs)."""
    plain = identity("experiment=music/nottingham", "model=gru")
    assert not {"objective", "select_on", "noisy_valid", "weight_noise_per"} & set(plain["trainer"])
    released = identity("experiment=released_optim/nottingham", "model=gru")
    assert "max_update_norm" not in released["optim"]
    explicit = identity(
        "experiment=music/nottingham", "model=gru", "trainer.objective=mean",
        "trainer.select_on=clean", "trainer.noisy_valid=false", "trainer.weight_noise_per=update",
    )  # fmt: skip
    assert explicit == plain
    summed = identity("experiment=music/nottingham", "model=gru", "trainer.objective=sum")
    assert identity_diff(plain, summed) == ["trainer.objective '<absent>' -> 'sum'"]


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("trainer.batch_size=8", "trainer.weight_noise_per=sequence needs trainer.batch_size=1"),
        ("optim.max_update_norm=0", "optim.max_update_norm=0.0 must be > 0 (null = no cap)"),
        ("trainer.clip_grad_norm=0", "trainer.clip_grad_norm=0.0 must be > 0 (null = no clip"),
        ("trainer.eval_with_noise=true", "trainer.eval_with_noise=true makes every evaluation"),
    ],
)
def test_bad_released_settings_are_one_line_exit_2_and_write_nothing(
    override: str, words: str, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "gru_repro.train", "experiment=released/jsb", override,
               f"paths.output_root={tmp_path}"]  # fmt: skip
    env = {**os.environ, "CI": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert not list(tmp_path.rglob("*.*")), "a config error wrote files"
