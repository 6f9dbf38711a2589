"""The released code's protocol in the single-run trainer: the summed objective, no gradient
clipping, no early stopping with the best checkpoint over the whole budget, and the noisy
validation NLL measured beside the clean one, either of them picking the checkpoint. Real runs
on the synthetic set (a few seconds each)."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from exploding import change_training_forwards
from optim_options import RMSPROP_RELEASED_CAPPED
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gru_repro.config.checks import ConfigError
from gru_repro.data import make_batches
from gru_repro.data.synthetic import load_synthetic
from gru_repro.models import build_model
from gru_repro.training.clipping import clip_or_rescue
from gru_repro.training.loop import Trainer
from gru_repro.training.metrics import batch_loss
from gru_repro.training.settings import TrainerSettings

RELEASED_OPTIM = {**RMSPROP_RELEASED_CAPPED, "lr": 1e-2}  # configs/experiment/released/*.yaml
RELEASED = {
    "batch_size": 1,
    "weight_noise_per": "sequence",
    "patience": 0,
    "objective": "sum",
    "clip_grad_norm": None,
    "noisy_valid": True,
    "weight_noise": 0.3,  # larger than the paper's 0.075: the two validation NLLs pick apart
    "progress": False,
}  # configs/trainer/released_exact.yaml, but for the noise
EPOCHS = 14


@pytest.fixture(scope="module")
def splits():
    return load_synthetic(n_train=12, n_valid=4, n_test=4, min_length=8, max_length=14)


def released_run(splits, run_dir, **changes) -> dict:
    settings = TrainerSettings(**{**RELEASED, "max_epochs": EPOCHS, **changes})
    trainer = Trainer(
        splits,
        run_dir=run_dir,
        seed=7,
        model_options={"unit": "gru", "hidden_size": 6},
        optim_options=RELEASED_OPTIM,
        settings=settings,
    )
    return trainer.fit()


def curves(run_dir) -> list[dict]:
    return list(csv.DictReader((run_dir / "curves.csv").open()))


def test_the_summed_objective_is_frames_times_the_mean(splits) -> None:
    """Its gradient is the mean's times the batch's predicted steps (the released code's
    objective is that much larger), while the reported NLL convention is the mean's."""
    torch.manual_seed(0)
    model = build_model(input_size=splits.input_size, output_size=splits.output_size,
                        unit="gru", hidden_size=6)  # fmt: skip
    batch = make_batches(splits.train, 4, shuffle=False)[0]
    grads = {}
    for objective in ("mean", "sum"):
        model.zero_grad()
        batch_loss(model.step_nll(batch), batch.mask, objective).backward()
        grads[objective] = [p.grad.clone() for p in model.parameters()]
    frames = int(batch.mask.sum())
    assert frames > 4  # several sequences of several steps
    for mean, total in zip(grads["mean"], grads["sum"], strict=True):
        torch.testing.assert_close(total, mean * frames, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="trainer.objective must be one of mean, sum"):
        batch_loss(model.step_nll(batch), batch.mask, "max")


def test_without_clipping_the_gradient_is_left_as_it_is_and_not_rescued() -> None:
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    loss = (p * torch.tensor([30.0, 40.0])).sum()
    loss.backward(retain_graph=True)
    norm, redone = clip_or_rescue(loss, [p], None)
    assert (norm, redone) == (50.0, 0) and torch.equal(p.grad, torch.tensor([30.0, 40.0]))
    # an overflowing gradient has no finite unclipped update: no rescue, a non-finite norm
    p.grad = None
    big = (p * torch.tensor([3e38, 3e38])).sum() * 10
    big.backward(retain_graph=True)
    norm, redone = clip_or_rescue(big, [p], None)
    assert not math.isfinite(norm) and redone == 0


def test_no_early_stopping_trains_the_budget_and_keeps_the_best_checkpoint(
    splits, tmp_path
) -> None:
    metrics = released_run(splits, tmp_path / "run", select_on="noisy")
    rows = curves(tmp_path / "run")
    assert metrics["status"] == "completed" and metrics["epochs"] == EPOCHS
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS + 1))
    noisy = [float(r["valid_nll_noisy"]) for r in rows[1:]]
    best = 1 + noisy.index(min(noisy))
    assert metrics["best_epoch"] == best < EPOCHS  # not the last epoch's weights
    # the reported NLLs are those of the best epoch's weights: its validation NLLs, both kinds
    assert metrics["valid_nll"] == float(rows[best]["valid_nll"])
    assert metrics["valid_nll_noisy"] == float(rows[best]["valid_nll_noisy"])
    saved = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert saved["epoch"] == best
    # the learning rate fell linearly, per update, to 1% at the last update of the budget
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    lrs = [e.value for e in events.Scalars("train/lr")]
    total = metrics["updates"]
    assert total == EPOCHS * len(splits.train) and len(lrs) == total
    lr = RELEASED_OPTIM["lr"]
    assert lrs[total // 2 - 1] == pytest.approx(lr * (1 - 0.99 * 0.5), rel=1e-5)
    assert lrs[-1] == pytest.approx(lr * 0.01, rel=1e-5)


def test_selection_follows_the_setting_and_changes_nothing_else(splits, tmp_path) -> None:
    """select_on picks the argmin of its own column; the training (and both columns) is the
    same, bit for bit, and so is a run that measures no noisy NLL at all."""
    runs = {sel: released_run(splits, tmp_path / sel, select_on=sel) for sel in ("clean", "noisy")}
    plain = released_run(splits, tmp_path / "plain", noisy_valid=False)
    table = {sel: curves(tmp_path / sel) for sel in runs}
    for sel, column in (("clean", "valid_nll"), ("noisy", "valid_nll_noisy")):
        values = [float(r[column]) for r in table[sel][1:]]
        assert runs[sel]["best_epoch"] == 1 + values.index(min(values))
        assert runs[sel]["best_valid_nll_seen"] == min(values)
    assert runs["clean"]["best_epoch"] != runs["noisy"]["best_epoch"]  # a real choice here
    # with no early stopping each run also keeps the other selection's checkpoint: what the
    # run selecting on it reports, bit for bit
    for sel, other in (("clean", "noisy"), ("noisy", "clean")):
        kept = runs[sel][f"{other}_selection"]
        assert kept.pop("select_on") == other
        assert kept == {k: runs[other][k] for k in kept}, sel
        assert (tmp_path / sel / "checkpoints" / f"best_{other}.pt").is_file()
    assert "noisy_selection" not in plain

    def same(rows):
        return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]

    assert same(table["clean"]) == same(table["noisy"])
    without = same(curves(tmp_path / "plain"))
    assert without == [{k: v for k, v in r.items() if k != "valid_nll_noisy"}
                       for r in same(table["clean"])]  # fmt: skip
    assert "valid_nll_noisy" not in plain and "valid_nll_noisy" in runs["clean"]
    assert plain["test_nll"] == runs["clean"]["test_nll"]


def test_with_early_stopping_no_other_selection_is_kept(splits, tmp_path) -> None:
    """patience > 0: the selection decides when training stops, so the other selection's
    checkpoint would not be that run's."""
    metrics = released_run(splits, tmp_path / "run", patience=2)
    assert "noisy_selection" not in metrics
    assert not (tmp_path / "run" / "checkpoints" / "best_noisy.pt").exists()


def test_both_validation_nlls_reach_tensorboard_and_metrics(splits, tmp_path) -> None:
    metrics = released_run(splits, tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"valid/nll", "valid/nll_noisy", "data/gru/valid_nll_noisy", "train/update_norm"} <= set(
        tags
    ), tags
    rows = curves(tmp_path / "run")
    noisy = [e.value for e in events.Scalars("valid/nll_noisy")]
    assert noisy == pytest.approx([float(r["valid_nll_noisy"]) for r in rows], rel=1e-6)
    assert [float(r["valid_nll_noisy"]) for r in rows] != [float(r["valid_nll"]) for r in rows]
    for split in ("train", "valid", "test"):
        for key in (f"{split}_nll_noisy", f"{split}_nll_seqavg_noisy"):
            assert math.isfinite(metrics[key]), key
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["valid_nll_noisy"] == metrics["valid_nll_noisy"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"batch_size": 4}, "trainer.weight_noise_per=sequence needs trainer.batch_size=1, got 4"),
        ({"eval_with_noise": True}, "trainer.eval_with_noise=true makes every evaluation noisy"),
        ({"weight_noise": 0.0}, "need weight noise: trainer.weight_noise is 0"),
        ({"objective": "max"}, "trainer.objective='max' must be one of mean, sum"),
        ({"select_on": "both"}, "trainer.select_on='both' must be one of clean, noisy"),
        ({"clip_grad_norm": 0.0}, "trainer.clip_grad_norm=0.0 must be > 0 (null = no clipping)"),
    ],
)
def test_bad_protocol_settings_are_one_line_errors(changes, words) -> None:
    with pytest.raises(ConfigError) as error:
        TrainerSettings(**{**RELEASED, **changes})
    assert words in str(error.value) and "\n" not in str(error.value)


class Crash(RuntimeError):
    pass


def test_a_released_run_resumed_after_a_crash_gives_the_uninterrupted_numbers(
    splits, tmp_path
) -> None:
    """The update cap, the summed objective and the noisy validation column survive a crash
    mid-epoch: the resumed run ends where the uninterrupted one does, curves included."""

    def trainer(run_dir) -> Trainer:
        return Trainer(
            splits,
            run_dir=run_dir,
            seed=7,
            model_options={"unit": "gru", "hidden_size": 6},
            optim_options=RELEASED_OPTIM,
            settings=TrainerSettings(**{**RELEASED, "max_epochs": 4, "select_on": "noisy"}),
        )

    reference = trainer(tmp_path / "a").fit()
    crashing = trainer(tmp_path / "b")

    def crash_in_epoch_three(n: int, output):
        if n == 30:  # 12 updates per epoch at batch 1: the 6th update of epoch 3
            raise Crash
        return output

    change_training_forwards(crashing.model, crash_in_epoch_three)
    with pytest.raises(Crash):
        crashing.fit()
    torch.manual_seed(12345)  # scramble the global RNG: the resume restores it
    resumed = trainer(tmp_path / "b")
    assert resumed.state.epoch == 2
    volatile = {"wall_seconds", "run_dir", "git_commit"}
    strip = lambda m: {k: v for k, v in m.items() if k not in volatile}  # noqa: E731
    assert strip(resumed.fit()) == strip(reference)
    for run in ("a", "b"):
        rows = curves(tmp_path / run)
        assert [r["epoch"] for r in rows] == ["0", "1", "2", "3", "4"]
    same = lambda rows: [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]  # noqa: E731
    assert same(curves(tmp_path / "b")) == same(curves(tmp_path / "a"))


def test_the_noisy_validation_draws_afresh_each_epoch_and_replays_exactly(splits, tmp_path):
    """One draw per sequence from a stream per epoch: the same epoch's stream gives the same
    NLL at the same weights, another epoch's another one (the released code drew anew)."""
    settings = TrainerSettings(**{**RELEASED, "max_epochs": 1})
    trainer = Trainer(
        splits,
        run_dir=tmp_path / "run",
        seed=7,
        model_options={"unit": "gru", "hidden_size": 6},
        optim_options=RELEASED_OPTIM,
        settings=settings,
    )
    noisy = trainer.evaluate_noisy
    assert all(b.lengths.numel() == 1 for b in noisy.batches["valid"])  # one sequence a draw
    values = [noisy("valid", stream=k).frame for k in (3, 3, 4)]
    assert values[0] == values[1] != values[2]
    assert trainer.evaluate("valid").frame not in values  # the clean one: no noise at all
