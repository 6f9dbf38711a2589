"""The training loop: gradient clipping, divergence, resume from a crash mid-epoch."""

from __future__ import annotations

import json
import math

import pytest
import torch
from exploding import Amplify

import gru_repro.training.clipping as clipping_module
from gru_repro.data.synthetic import load_synthetic
from gru_repro.training.loop import Trainer
from gru_repro.training.metrics import NLLTotals
from gru_repro.training.settings import TrainerSettings

VOLATILE = {"wall_seconds", "run_dir", "git_commit"}


@pytest.fixture(scope="module")
def splits():
    return load_synthetic(n_train=12, n_valid=4, n_test=4, min_length=8, max_length=14)


def make_trainer(splits, run_dir, *, optim=None, **settings) -> Trainer:
    options = {"batch_size": 4, "max_epochs": 3, "patience": 0, **settings}
    return Trainer(
        splits,
        run_dir=run_dir,
        seed=7,
        model_options={"unit": "lstm", "hidden_size": 6},
        optim_options=optim or {"name": "rmsprop", "lr": 1e-2},
        settings=TrainerSettings(**options),
    )


def test_gradient_norm_is_clipped_to_the_threshold(splits, tmp_path, monkeypatch) -> None:
    # momentum-free floored RMSProp with a huge floor: the step is -lr * g / floor, so the size
    # of the first step reveals the norm of the clipped gradient
    optim = {
        "name": "rmsprop_released",
        "lr": 1.0,
        "decay": 0.0,
        "momentum": 0.0,
        "rms_floor": 1e3,
        "schedule": "constant",
    }
    trainer = make_trainer(
        splits,
        tmp_path,
        optim=optim,
        batch_size=12,
        max_epochs=1,
        clip_grad_norm=1e-3,
        weight_noise=0.0,
    )
    before = [p.detach().clone() for p in trainer.model.parameters()]
    norms = []
    original = clipping_module.clip_gradient_norm

    def spy(params, max_norm, loss_scale=1.0):
        norm = original(params, max_norm, loss_scale)
        norms.append(float(norm))
        return norm

    monkeypatch.setattr(clipping_module, "clip_gradient_norm", spy)
    trainer.fit()
    step = torch.cat(
        [
            (p.detach() - b).flatten()
            for p, b in zip(trainer.model.parameters(), before, strict=True)
        ]
    )
    assert len(norms) == 1 and norms[0] > 100 * 1e-3  # the raw norm was far above 1e-3
    # float32 weights of size ~0.1 resolve a 1e-6 step to about 1%
    assert float(step.norm()) == pytest.approx(1e-3 / 1e3, rel=0.03)


def test_nan_loss_stops_cleanly_as_diverged(splits, tmp_path) -> None:
    trainer = make_trainer(splits, tmp_path, max_epochs=5)
    real = trainer.noise.step_nll
    calls = []

    def poisoned(batch):
        calls.append(1)
        out = real(batch)
        return out * float("nan") if len(calls) == 5 else out  # update 2 of epoch 2

    trainer.noise.step_nll = poisoned
    metrics = trainer.fit()
    assert metrics["status"] == "diverged" and metrics["diverged_epoch"] == 2
    assert "non-finite training loss" in metrics["diverged_reason"]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["status"] == "diverged"
    assert "CPU cores" in on_disk["machine"] and on_disk["device"] == "cpu"  # where it ran
    assert on_disk["loops"] in ("cpp", "python")  # which time loops (models/kernels.py)
    assert on_disk["best_epoch"] == 1 and on_disk["test_nll"] is not None  # best checkpoint kept


def test_exploding_nll_stops_as_diverged(splits, tmp_path, monkeypatch) -> None:
    trainer = make_trainer(splits, tmp_path, max_epochs=5, diverge_factor=3.0)
    real = trainer._eval
    script = iter([10.0, 9.0, 31.0])  # 31 > 3 x the initial 10

    def fake(split):
        if split == "valid" and trainer.state.diverged_epoch is None:
            return NLLTotals(total=next(script), steps=1, sequences=1)
        return real(split)

    monkeypatch.setattr(trainer, "_eval", fake)
    metrics = trainer.fit()
    assert metrics["status"] == "diverged" and metrics["diverged_epoch"] == 2
    assert metrics["epochs"] == 1 and "exploded" in metrics["diverged_reason"]


class Crash(Exception):
    pass


def test_resume_after_a_crash_mid_epoch_gives_the_uninterrupted_numbers(splits, tmp_path):
    settings = {"max_epochs": 4, "weight_noise": 0.075}
    optim = {
        "name": "rmsprop_released",
        "lr": 1e-2,
        "schedule": "linear",
        "final_lr_fraction": 0.01,
    }
    reference = make_trainer(splits, tmp_path / "a", optim=optim, **settings).fit()
    again = make_trainer(splits, tmp_path / "same", optim=optim, **settings).fit()
    strip = lambda m: {k: v for k, v in m.items() if k not in VOLATILE}  # noqa: E731
    assert strip(again) == strip(reference)  # same seed twice, same numbers

    crashing = make_trainer(splits, tmp_path / "b", optim=optim, **settings)
    real, calls = crashing.noise.step_nll, []

    def crash_in_epoch_three(batch):
        calls.append(1)
        if len(calls) == 8:  # 3 updates per epoch: second update of epoch 3
            raise Crash
        return real(batch)

    crashing.noise.step_nll = crash_in_epoch_three
    with pytest.raises(Crash):
        crashing.fit()
    torch.manual_seed(12345)  # scramble global RNG: the resume must restore it
    resumed = make_trainer(splits, tmp_path / "b", optim=optim, **settings)
    assert resumed.state.epoch == 2
    assert strip(resumed.fit()) == strip(reference)
    curves = (tmp_path / "b" / "curves.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in curves] == ["epoch", "0", "1", "2", "3", "4"]


def test_a_negative_initial_nll_does_not_count_as_divergence(splits, tmp_path, monkeypatch):
    # a density model's NLL (speech mixtures) can be negative: factor x initial would lie below
    # the initial value itself and flag divergence at once
    trainer = make_trainer(splits, tmp_path, max_epochs=3, diverge_factor=3.0, eval_train=True)
    values = iter([-10.0, -11.0, -12.0, -13.0])  # limit: -10 + 2 x 10 = 10

    def fake(split):
        value = next(values, -13.0) if split == "valid" else -12.0
        return NLLTotals(total=value, steps=1, sequences=1)

    monkeypatch.setattr(trainer, "_eval", fake)
    metrics = trainer.fit()
    assert metrics["status"] == "completed" and metrics["diverged_epoch"] is None

    exploding = make_trainer(
        splits, tmp_path / "b", max_epochs=3, diverge_factor=3.0, eval_train=True
    )
    values = iter([-10.0, 10.5])  # above the limit of 10
    monkeypatch.setattr(exploding, "_eval", fake)
    metrics = exploding.fit()
    assert metrics["status"] == "diverged" and metrics["diverged_epoch"] == 1
    assert "limit 10 " in metrics["diverged_reason"]


def test_resuming_with_another_optimizer_is_refused_not_crashed(splits, tmp_path) -> None:
    from gru_repro.config import ConfigError

    plain = {"name": "rmsprop", "lr": 1e-2}
    released = {"name": "rmsprop_released", "lr": 1e-2}

    def trainer(optim):
        return Trainer(
            splits,
            run_dir=tmp_path,
            seed=7,
            model_options={"unit": "lstm", "hidden_size": 6},
            optim_options=optim,
            settings=TrainerSettings(batch_size=4, max_epochs=1, patience=0),
            config={"optim": optim, "trainer": {"max_epochs": 1, "threads": 1}},
        )

    trainer(plain).fit()  # leaves checkpoints/last.pt with the full resume state
    with pytest.raises(ConfigError, match=r"optim\.name 'rmsprop' -> 'rmsprop_released'"):
        trainer(released)  # was: KeyError 'velocity'; the identity (here: config) differs
    assert trainer(plain).state.epoch == 1  # the same config still resumes


def test_overflowing_gradients_are_rescaled_not_diverged(splits, tmp_path) -> None:
    """Every update's gradient overflows float32 (an amplifier of 1e40 on the NLL's backward):
    the run trains on, counting the recomputed updates in metrics.json."""
    trainer = make_trainer(splits, tmp_path, max_epochs=2)
    real = trainer.noise.step_nll
    # two factors: 1e40 itself is beyond float32
    trainer.noise.step_nll = lambda batch: Amplify.apply(Amplify.apply(real(batch), 1e20), 1e20)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = trainer.fit()
    assert metrics["status"] != "diverged"
    assert metrics["overflow_updates"] == metrics["updates"] == 6  # 12 sequences / 4, 2 epochs
    moved = sum(
        float((p.detach() - b).abs().sum())
        for p, b in zip(trainer.model.parameters(), before, strict=True)
    )
    assert math.isfinite(moved) and moved > 0
