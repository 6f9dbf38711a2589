"""The training loop: gradient clipping, divergence, resume from a crash mid-epoch. Faults are
put into the model's training forwards with torch's forward hooks (tests/helpers/exploding.py) and
explosions come from real settings; the trainer's own code runs unchanged."""

from __future__ import annotations

import json
import math

import pytest
import torch
from exploding import amplified_gradients, change_training_forwards
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gru_repro.data.synthetic import load_synthetic
from gru_repro.training.loop import Trainer
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


def test_gradient_norm_is_clipped_to_the_threshold(splits, tmp_path) -> None:
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
    trainer.fit()
    events = EventAccumulator(str(tmp_path))  # the raw norm of each update, as logged
    events.Reload()
    norms = [(e.step, e.value) for e in events.Scalars("train/grad_norm")]
    step = torch.cat(
        [
            (p.detach() - b).flatten()
            for p, b in zip(trainer.model.parameters(), before, strict=True)
        ]
    )
    assert len(norms) == 1 and norms[0][0] == 1  # one update: 12 sequences, batch of 12
    assert norms[0][1] > 100 * 1e-3  # the raw norm was far above 1e-3
    # float32 weights of size ~0.1 resolve a 1e-6 step to about 1%
    assert float(step.norm()) == pytest.approx(1e-3 / 1e3, rel=0.03)


def test_nan_loss_stops_cleanly_as_diverged(splits, tmp_path) -> None:
    trainer = make_trainer(splits, tmp_path, max_epochs=5)

    def poison_update_five(n: int, output):  # 3 updates per epoch: update 2 of epoch 2
        head_params, state = output
        return (head_params * math.nan if n == 5 else head_params), state

    change_training_forwards(trainer.model, poison_update_five)
    metrics = trainer.fit()
    assert metrics["status"] == "diverged" and metrics["diverged_epoch"] == 2
    assert metrics["diverged_reason"] == "non-finite training loss at update 5"
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["status"] == "diverged"
    assert "CPU cores" in on_disk["machine"] and on_disk["device"] == "cpu"  # where it ran
    assert on_disk["loops"] in ("cpp", "python")  # which time loops (models/kernels.py)
    assert on_disk["best_epoch"] == 1 and on_disk["test_nll"] is not None  # best checkpoint kept


def test_exploding_nll_stops_as_diverged(tmp_path) -> None:
    """A learning rate of 1 for librnn's RMSProp (normalised steps of ~1 per weight) makes the
    NLL explode after the first epoch: the run stops there, keeping its best checkpoint."""
    splits = load_synthetic(n_train=8, n_valid=4, n_test=4, min_length=8, max_length=10)
    trainer = Trainer(
        splits,
        run_dir=tmp_path,
        seed=0,
        model_options={"unit": "gru", "hidden_size": 4},
        optim_options={"name": "rmsprop_released", "lr": 1.0},
        settings=TrainerSettings(batch_size=4, max_epochs=10, patience=0, diverge_factor=3.0),
    )
    metrics = trainer.fit()
    assert metrics["status"] == "diverged" and "exploded" in metrics["diverged_reason"]
    assert metrics["diverged_epoch"] == metrics["epochs"] + 1 >= 2  # stopped mid-run
    limit = 3.0 * trainer.state.history[0]["valid_nll"]
    assert f"limit {limit:.4g} " in metrics["diverged_reason"]
    assert all(row["valid_nll"] <= limit for row in trainer.state.history)  # until then
    assert metrics["best_epoch"] >= 1 and math.isfinite(metrics["test_nll"])


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

    def crash_in_epoch_three(n: int, output):
        if n == 8:  # 3 updates per epoch: second update of epoch 3
            raise Crash
        return output

    change_training_forwards(crashing.model, crash_in_epoch_three)
    with pytest.raises(Crash):
        crashing.fit()
    torch.manual_seed(12345)  # scramble global RNG: the resume must restore it
    resumed = make_trainer(splits, tmp_path / "b", optim=optim, **settings)
    assert resumed.state.epoch == 2
    assert strip(resumed.fit()) == strip(reference)
    curves = (tmp_path / "b" / "curves.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in curves] == ["epoch", "0", "1", "2", "3", "4"]


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
    amplified_gradients(trainer.model)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = trainer.fit()
    assert metrics["status"] != "diverged"
    assert metrics["overflow_updates"] == metrics["updates"] == 6  # 12 sequences / 4, 2 epochs
    moved = sum(
        float((p.detach() - b).abs().sum())
        for p, b in zip(trainer.model.parameters(), before, strict=True)
    )
    assert math.isfinite(moved) and moved > 0


def test_a_run_s_checkpoint_carries_its_data_facts_and_samples_are_logged(splits, tmp_path):
    """Training stores the typed data facts in best.pt; sampling rebuilds model and facts from
    it; trainer.sample_every puts piano rolls into TensorBoard during training."""
    from gru_repro.sampling.loading import load_run

    make_trainer(splits, tmp_path, max_epochs=2, sample_every=1).fit()
    run = load_run(tmp_path)
    assert run.facts == splits.facts and run.model.hidden_size == 6
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    steps = [event.step for event in events.Images("samples/piano_roll")]
    assert steps == [3, 6]  # after epochs 1 and 2, 3 updates each (12 sequences, batches of 4)
