"""Each member of a population is its single run: trained a few epochs on real JSB data, every
member's metrics.json, curves.csv, TensorBoard scalars and checkpoints hold the numbers of the
single run with that learning rate, for the three units and both optimizers, with members
stopping early, diverging (after and inside an epoch) and being rescued from overflow.

The populations run each member with the single model's own kernels where asked
(``trainer.population_exact``; float64 always), so the match is exact (bit for bit) in
float32, the training dtype, and in float64. With the default batched products (float32) each
member matches its single run within float32 rounding.
"""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest
import torch
from exploding import amplified_gradients, change_training_forwards
from optim_options import OPTIMS
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gru_repro.data import load_splits
from gru_repro.data.splits import DataSplits
from gru_repro.training.loop import Trainer
from gru_repro.training.population.trainer import Member, PopulationTrainer
from gru_repro.training.settings import TrainerSettings

VOLATILE = {"wall_seconds", "run_dir"}
# a slow member that trains to the budget, members that stop early at different epochs, and
# one whose NLL explodes after its first epoch
LRS = (0.001, 0.03, 0.3, 3.0, 30.0)
MAX_EPOCHS = 5


@pytest.fixture(scope="module")
def jsb(data_mirror, tmp_path_factory) -> DataSplits:
    """JSB Chorales, 12/6/6 of its chorales (3 updates of 4 per epoch)."""
    splits = load_splits("jsb", data_dir=tmp_path_factory.mktemp("data"), mirror=data_mirror)
    return dataclasses.replace(
        splits, train=splits.train[:12], valid=splits.valid[:6], test=splits.test[:6]
    )


def _in(dtype, splits: DataSplits) -> DataSplits:
    def cast(examples):
        return [(x.to(dtype), y.to(dtype)) for x, y in examples]

    return dataclasses.replace(
        splits, train=cast(splits.train), valid=cast(splits.valid), test=cast(splits.test)
    )


@pytest.fixture
def default_dtype():
    previous = torch.get_default_dtype()
    yield torch.set_default_dtype
    torch.set_default_dtype(previous)


def _settings(**changes) -> TrainerSettings:
    return TrainerSettings(
        **{"batch_size": 4, "max_epochs": MAX_EPOCHS, "patience": 1, "progress": False, **changes}
    )


def _single(splits, run_dir, unit, optim, lr, settings, hook=None) -> Trainer:
    trainer = Trainer(
        splits,
        run_dir=run_dir,
        seed=1,
        model_options={"unit": unit, "hidden_size": 8},
        optim_options={**OPTIMS[optim], "lr": lr},
        settings=settings,
        run_info={"dataset": "jsb"},
        identity={"lr": lr},
    )
    if hook is not None:
        hook(trainer.model)
    return trainer


def _population(splits, root, unit, optim, lrs, settings, **kwargs) -> PopulationTrainer:
    return PopulationTrainer(
        splits,
        members=[Member(root / f"lr={lr}", lr, {}, {"lr": lr}) for lr in lrs],
        seed=1,
        model_options={"unit": unit, "hidden_size": 8},
        optim_options={**OPTIMS[optim], "lr": 0.0},
        settings=settings,
        run_info={"dataset": "jsb"},
        **kwargs,
    )


def _curves(run_dir) -> list[dict]:
    rows = csv.DictReader((run_dir / "curves.csv").open())
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]


def _scalars(run_dir) -> dict:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def _tensors_equal(a, b, where="") -> None:
    """Nested checkpoint data equal, tensors bit for bit (wall times left out)."""
    if isinstance(a, dict):
        keys = set(a) - {"wall_seconds", "tb_start_walltime"}
        assert keys == set(b) - {"wall_seconds", "tb_start_walltime"}, where
        for key in keys:
            _tensors_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _tensors_equal(x, y, f"{where}[{k}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b or (a != a and b != b), where  # NaN == NaN here


def assert_same_run(single_dir, member_dir) -> None:
    single = {k: v for k, v in _read(single_dir).items() if k not in VOLATILE}
    member = {k: v for k, v in _read(member_dir).items() if k not in VOLATILE}
    assert member == single
    assert _curves(member_dir) == _curves(single_dir)
    assert _scalars(member_dir) == _scalars(single_dir)
    names = sorted(p.name for p in (single_dir / "checkpoints").glob("*.pt"))
    assert names == sorted(p.name for p in (member_dir / "checkpoints").glob("*.pt"))
    for name in {"best.pt", "last.pt", *names}:  # best_<other>.pt too, where kept
        path = single_dir / "checkpoints" / name
        assert path.is_file() == (member_dir / "checkpoints" / name).is_file(), name
        if path.is_file():
            _tensors_equal(
                torch.load(path, weights_only=True),
                torch.load(member_dir / "checkpoints" / name, weights_only=True),
                name,
            )


def _read(run_dir) -> dict:
    import json

    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("optim", ["rmsprop", "rmsprop_released"])
@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_each_member_is_the_single_run_with_its_lr(
    jsb, tmp_path, unit, optim, dtype, default_dtype
) -> None:
    default_dtype(dtype)
    splits, settings = _in(dtype, jsb), _settings(population_exact=dtype == torch.float32)
    results = _population(splits, tmp_path / "population", unit, optim, LRS, settings).fit()
    for lr, metrics in zip(LRS, results, strict=True):
        _single(splits, tmp_path / "single" / f"lr={lr}", unit, optim, lr, settings).fit()
        assert_same_run(tmp_path / "single" / f"lr={lr}", tmp_path / "population" / f"lr={lr}")
        assert metrics["lr"] == lr and math.isfinite(metrics.get("test_nll") or math.nan) == (
            metrics["status"] != "diverged" or metrics["best_epoch"] is not None
        )
    epochs = [m["epochs"] for m in results]
    statuses = [m["status"] for m in results]
    # members left the population at different epochs while others trained on
    print(unit, optim, dtype, statuses, epochs)
    assert MAX_EPOCHS in epochs and min(epochs) < MAX_EPOCHS, (statuses, epochs)
    assert "early_stopped" in statuses and "diverged" in statuses, (statuses, epochs)


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_batched_float32_members_are_their_single_runs_within_rounding(jsb, tmp_path, unit):
    """The default float32 population (products batched over the members): every member's
    epochs, status and NLLs those of its single run, the NLLs within 1e-4 nats after 5 epochs
    (float32 rounding of other summation orders, grown through training)."""
    settings, lrs = _settings(), (0.001, 0.03)
    assert not settings.population_exact
    results = _population(jsb, tmp_path / "population", unit, "rmsprop", lrs, settings).fit()
    for lr, member in zip(lrs, results, strict=True):
        single = _single(jsb, tmp_path / "single" / f"lr={lr}", unit, "rmsprop", lr, settings)
        metrics = single.fit()
        assert (member["status"], member["epochs"]) == (metrics["status"], metrics["epochs"])
        for key in ("train_nll", "valid_nll", "test_nll", "test_nll_seqavg"):
            assert member[key] == pytest.approx(metrics[key], abs=1e-4), key
        member_curves = _curves(tmp_path / "population" / f"lr={lr}")
        single_curves = _curves(tmp_path / "single" / f"lr={lr}")
        assert [r["epoch"] for r in member_curves] == [r["epoch"] for r in single_curves]
        for a, b in zip(member_curves, single_curves, strict=True):
            assert float(a["valid_nll"]) == pytest.approx(float(b["valid_nll"]), abs=1e-4)


def _poison(member: int, members: int, update: int):
    """Forward hook: the NLL of ``member``'s training forward at ``update`` becomes NaN (a
    single run: ``members=1``, ``member=0``). The reference population runs its members'
    forwards one after another, member 0 first, through one template model."""

    def change(n: int, output):
        head_params, state = output
        hit = (n - 1) % members == member and (n - 1) // members + 1 == update
        return (head_params * math.nan if hit else head_params), state

    return change


def test_a_member_diverging_inside_an_epoch_leaves_the_others_exact(jsb, tmp_path) -> None:
    """Member 1's loss is NaN at its update 5 (epoch 2): it ends there as its single run does,
    the other members train on, bit for bit their single runs."""
    settings, lrs = _settings(patience=0, max_epochs=3), (0.001, 0.01, 0.1)
    # fused=False: the fault is injected through the reference population's template forward
    # (the fused population's own fault isolation: tests/models/test_population_fused.py)
    population = _population(
        jsb, tmp_path / "population", "gru", "rmsprop", lrs, settings, fused=False
    )
    change_training_forwards(population.population.template, _poison(1, len(lrs), 5))
    results = population.fit()
    for k, lr in enumerate(lrs):
        hook = (lambda m: change_training_forwards(m, _poison(0, 1, 5))) if k == 1 else None
        _single(jsb, tmp_path / "single" / f"lr={lr}", "gru", "rmsprop", lr, settings, hook).fit()
        assert_same_run(tmp_path / "single" / f"lr={lr}", tmp_path / "population" / f"lr={lr}")
    assert [m["status"] for m in results] == ["completed", "diverged", "completed"]
    assert results[1]["diverged_reason"] == "non-finite training loss at update 5"
    assert results[1]["updates"] == 4 and results[0]["updates"] == 9


def test_overflowing_gradients_are_rescued_per_member_as_in_the_single_run(jsb, tmp_path) -> None:
    """Every update's gradient overflows float32 (amplified 1e40 in the backward): each
    member's backward is redone on a scaled loss, as its single run's is."""
    settings, lrs = _settings(patience=0, max_epochs=2), (0.003, 0.03)
    population = _population(  # fused=False: amplified through the template, as above
        jsb, tmp_path / "population", "lstm", "rmsprop_released", lrs, settings, fused=False
    )
    amplified_gradients(population.population.template)
    results = population.fit()
    for lr in lrs:
        single = _single(
            jsb, tmp_path / "single" / f"lr={lr}", "lstm", "rmsprop_released", lr, settings,
            amplified_gradients,
        )  # fmt: skip
        single.fit()
        assert_same_run(tmp_path / "single" / f"lr={lr}", tmp_path / "population" / f"lr={lr}")
    assert [m["overflow_updates"] for m in results] == [6, 6]


def test_members_log_the_samples_of_their_single_runs(jsb, tmp_path) -> None:
    """The samples a member logs are its single run's, image for image. Exact mode: a sample is
    a draw of Bernoulli notes, which a difference in float32 rounding (the default batched
    products round differently from the single model's on some CPUs) can flip."""
    settings = _settings(patience=0, max_epochs=2, sample_every=1, population_exact=True)
    lrs = (0.01, 0.1)
    _population(jsb, tmp_path / "population", "tanh", "rmsprop", lrs, settings).fit()
    for lr in lrs:
        _single(jsb, tmp_path / "single" / f"lr={lr}", "tanh", "rmsprop", lr, settings).fit()
        images = []
        for run_dir in (tmp_path / "single" / f"lr={lr}", tmp_path / "population" / f"lr={lr}"):
            events = EventAccumulator(str(run_dir))
            events.Reload()
            images.append(
                [(e.step, e.encoded_image_string) for e in events.Images("samples/piano_roll")]
            )
        assert images[0] == images[1] and [step for step, _ in images[0]] == [3, 6]


@pytest.mark.parametrize("select_on", ["clean", "noisy"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_member_is_its_single_run_under_the_released_protocol(
    jsb, tmp_path, dtype, select_on, default_dtype
) -> None:
    """Batch 1, the summed objective, no clipping, the update cap, no early stopping, the noisy
    validation NLL beside the clean one and either selecting: every member its single run."""
    default_dtype(dtype)
    splits, lrs = _in(dtype, jsb), (1e-4, 1e-3, 3e-2)
    settings = _settings(
        batch_size=1, weight_noise_per="sequence", max_epochs=3, patience=0, objective="sum",
        clip_grad_norm=None, noisy_valid=True, select_on=select_on,
        population_exact=dtype == torch.float32,
    )  # fmt: skip
    optim = "rmsprop_released_capped"
    population = _population(splits, tmp_path / "population", "gru", optim, lrs, settings)
    step, largest = population.optimizer.step, [0.0] * len(lrs)

    def recording_step():  # each member's largest update norm (the cap's input) over the run
        step()
        largest[:] = map(max, largest, population.optimizer.last_update_norms)

    population.optimizer.step = recording_step
    results = population.fit()
    assert largest[0] < 1.0 < largest[-1], largest  # the cap bound for some members only
    for lr in lrs:
        _single(splits, tmp_path / "single" / f"lr={lr}", "gru", optim, lr, settings).fit()
        assert_same_run(tmp_path / "single" / f"lr={lr}", tmp_path / "population" / f"lr={lr}")
        assert "valid_nll_noisy" in _curves(tmp_path / "population" / f"lr={lr}")[0]
    assert all(m["epochs"] == 3 for m in results), results
    assert all(math.isfinite(m["valid_nll_noisy"]) for m in results)
