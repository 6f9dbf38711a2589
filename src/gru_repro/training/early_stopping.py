"""Early stopping on validation NLL with patience (the paper: "early stopping on the validation
set"; patience is not stated, so it is a config value)."""

from __future__ import annotations

import math


class EarlyStopping:
    """Tracks the best (lowest) validation NLL; stops after ``patience`` evaluations without an
    improvement larger than ``min_delta`` nats. ``patience <= 0`` never stops early."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if min_delta < 0:
            raise ValueError(f"trainer.min_delta must be >= 0, got {min_delta}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best: float = math.inf
        self.best_epoch: int = 0
        self.bad_evals: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record one validation NLL; True when it is a new best (save the checkpoint then)."""
        if math.isfinite(value) and value < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_evals = float(value), int(epoch), 0
            return True
        self.bad_evals += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_evals >= self.patience

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_evals": self.bad_evals,
            "patience": self.patience,
            "min_delta": self.min_delta,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_evals = int(state["bad_evals"])
