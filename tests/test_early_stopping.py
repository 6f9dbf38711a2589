"""Early stopping: stops after `patience` checks without improvement and restores the best."""

from __future__ import annotations

import math

import torch

from gru_repro.data.synthetic import load_synthetic
from gru_repro.training.checkpoint import load_checkpoint
from gru_repro.training.early_stopping import EarlyStopping
from gru_repro.training.loop import Trainer
from gru_repro.training.metrics import NLLTotals
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


def test_trainer_stops_early_and_reports_at_the_best_checkpoint(tmp_path, monkeypatch) -> None:
    splits = load_synthetic(n_train=8, n_valid=4, n_test=4, min_length=8, max_length=10)
    trainer = Trainer(
        splits,
        run_dir=tmp_path,
        seed=0,
        model_options={"unit": "gru", "hidden_size": 4},
        optim_options={"name": "rmsprop", "lr": 1e-2},
        settings=TrainerSettings(batch_size=4, max_epochs=10, patience=2),
    )
    # scripted validation NLL per check (epoch 0, 1, 2, ...): best at epoch 2, then worse
    scripted = iter([20.0, 10.0, 8.0, 9.0, 9.5, 30.0])
    real_eval = trainer._eval
    weights_at_check = []

    def fake_eval(split: str) -> NLLTotals:
        if split == "valid" and trainer.state.diverged_epoch is None and len(weights_at_check) < 5:
            weights_at_check.append(trainer.model.rnn.weight_hh.detach().clone())
            return NLLTotals(total=next(scripted), steps=1, sequences=1, seq_mean_sum=0.0)
        return real_eval(split)

    monkeypatch.setattr(trainer, "_eval", fake_eval)
    metrics = trainer.fit()

    assert metrics["status"] == "early_stopped"
    assert metrics["epochs"] == 4 and metrics["best_epoch"] == 2  # stopped 2 checks after best
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert best["epoch"] == 2 and last["epoch"] == 4
    # the model was restored to the best weights before the final evaluation
    torch.testing.assert_close(trainer.model.rnn.weight_hh, weights_at_check[2])
    torch.testing.assert_close(best["model"]["rnn.weight_hh"], weights_at_check[2])
    assert not torch.allclose(last["model"]["rnn.weight_hh"], weights_at_check[2])
    assert metrics["test_nll"] == real_eval("test").frame
