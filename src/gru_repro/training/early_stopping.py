"""When a run stops on its NLLs: early stopping on validation NLL with patience (the paper:
"early stopping on the validation set"; patience is not stated, so it is a config value), and
the divergence test against the untrained model's validation NLL."""

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


def divergence_limit(initial: float, factor: float) -> float:
    """The NLL above which a run counts as diverged: ``initial + (factor - 1) x |initial|``.

    ``factor x initial`` for a positive initial NLL (computed so, bit for bit), and still above
    the initial value for a negative one (a density model's NLL, e.g. the speech mixtures),
    where ``factor x initial`` would flag divergence at once.
    """
    return factor * initial if initial >= 0 else initial + (factor - 1.0) * abs(initial)


def explosion(train_nll: float, valid_nll: float, initial: float, factor: float) -> str | None:
    """Why the run diverged (a non-finite validation NLL, or either NLL above
    :func:`divergence_limit`), or None when it did not."""
    limit = divergence_limit(initial, factor)
    if not math.isfinite(valid_nll) or valid_nll > limit or train_nll > limit:
        return (
            f"NLL exploded (train {train_nll:.4g}, valid {valid_nll:.4g} "
            f"> limit {limit:.4g} = initial {initial:.4g} + {factor - 1:g} x |initial|)"
        )
    return None
