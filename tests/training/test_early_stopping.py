"""Early stopping: stops after `patience` checks without improvement and restores the best;
the divergence limit for NLLs of either sign."""

from __future__ import annotations

import math

import torch

from gru_repro.data import make_batches
from gru_repro.data.synthetic import load_synthetic
from gru_repro.models import build_model
from gru_repro.training.checkpoint import load_checkpoint
from gru_repro.training.early_stopping import EarlyStopping, divergence_limit, explosion
from gru_repro.training.loop import Trainer
from gru_repro.training.metrics import evaluate
from gru_repro.training.settings import TrainerSettings


def test_patience_counts_checks_since_the_best() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert stopper.update(5.0, 1) and not stopper.should_stop
    assert not stopper.update(4.95, 2)  # within min_delta: no improvement
    assert stopper.update(4.0, 3) and stopper.bad_evals == 0
    assert not stopper.update(math.nan, 4) and not stopper.update(4.5, 5)
    assert stopper.should_stop and (stopper.best, stopper.best_epoch) == (4.0, 3)
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(stopper.state_dict())
    assert restored.should_stop and restored.best_epoch == 3
    assert not EarlyStopping(patience=0).should_stop  # 0 never stops


def test_trainer_stops_early_and_reports_at_the_best_checkpoint(tmp_path) -> None:
    """A learning rate of 0.1 overshoots after a few epochs: the valid NLL stops improving, the
    run stops ``patience`` checks after its best and reports every NLL at the best weights."""
    splits = load_synthetic(n_train=8, n_valid=4, n_test=4, min_length=8, max_length=10)
    trainer = Trainer(
        splits,
        run_dir=tmp_path,
        seed=0,
        model_options={"unit": "gru", "hidden_size": 4},
        optim_options={"name": "rmsprop", "lr": 0.1},
        settings=TrainerSettings(batch_size=4, max_epochs=10, patience=2),
    )
    metrics = trainer.fit()

    valid = {row["epoch"]: row["valid_nll"] for row in trainer.state.history}
    best_epoch = min((e for e in valid if e > 0), key=valid.get)
    assert metrics["status"] == "early_stopped" and metrics["best_epoch"] == best_epoch
    assert metrics["epochs"] == best_epoch + 2 < 10  # stopped 2 checks after the best
    assert all(valid[e] >= valid[best_epoch] for e in valid if e > best_epoch)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert best["epoch"] == best_epoch and last["epoch"] == metrics["epochs"]
    # the model was restored to the best weights before the final evaluation
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, best["model"][name]), name
    assert not torch.equal(last["model"]["rnn.weight_hh"], best["model"]["rnn.weight_hh"])
    assert metrics["valid_nll"] == valid[best_epoch]  # the best epoch's check, reproduced
    rebuilt = build_model(input_size=24, output_size=24, **best["model_options"])
    rebuilt.load_state_dict(best["model"])
    test_batches = make_batches(splits.test, 64, shuffle=False)
    assert metrics["test_nll"] == evaluate(rebuilt, test_batches).frame


def test_the_divergence_limit_lies_above_the_initial_nll_of_either_sign() -> None:
    """factor x initial for a positive initial NLL (bit for bit); for a negative one (a density
    model's NLL, e.g. speech mixtures), initial + (factor - 1) x |initial|, still above it."""
    assert divergence_limit(16.65, 10.0) == 10.0 * 16.65
    assert divergence_limit(-10.0, 3.0) == 10.0
    assert explosion(train_nll=-12.0, valid_nll=-13.0, initial=-10.0, factor=3.0) is None
    assert explosion(train_nll=9.9, valid_nll=-9.0, initial=-10.0, factor=3.0) is None
    reason = explosion(train_nll=-12.0, valid_nll=10.5, initial=-10.0, factor=3.0)
    assert reason == (
        "NLL exploded (train -12, valid 10.5 > limit 10 = initial -10 + 2 x |initial|)"
    )
    assert explosion(train_nll=30.5, valid_nll=12.0, initial=10.0, factor=3.0) is not None
    assert explosion(train_nll=1.0, valid_nll=math.nan, initial=10.0, factor=3.0) is not None
