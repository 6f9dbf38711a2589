"""Everything beyond the weights that a resumed run needs to continue exactly where it was:
counters, curve history, optimizer / scheduler / early-stopping state, and all generators."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gru_repro.training.checkpoint import capture_rng_state, restore_rng_state

# trainer keys that may differ between the interrupted and the resuming invocation
RESUME_ONLY_KEYS = ("resume", "force", "progress")


@dataclass
class RunState:
    epoch: int = 0  # last finished epoch (0 = only the initial evaluation)
    updates: int = 0
    wall_seconds: float = 0.0  # training wall time so far, summed over resumed sessions
    tb_start_walltime: float | None = None  # unix time of update 0 on TensorBoard's time axis
    initial_valid_nll: float | None = None  # reference for the divergence test
    diverged_epoch: int | None = None
    diverged_reason: str | None = None
    history: list[dict] = field(default_factory=list)  # curves.csv rows

    def capture(self, trainer) -> dict:
        """The resume-only part of last.pt (plain data and tensors: weights_only-safe)."""
        return {
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict(),
            "early_stopping": trainer.stopper.state_dict(),
            "weight_noise": trainer.noise.state_dict(),
            "shuffle_generator": trainer.shuffle_generator.get_state(),
            "rng": capture_rng_state(),
            "run_state": {
                "epoch": self.epoch,
                "updates": self.updates,
                "wall_seconds": self.wall_seconds,
                "tb_start_walltime": self.tb_start_walltime,
                "initial_valid_nll": self.initial_valid_nll,
                "history": [dict(row) for row in self.history],
            },
        }

    def restore(self, trainer, bundle: dict) -> None:
        trainer.optimizer.load_state_dict(bundle["optimizer"])
        trainer.scheduler.load_state_dict(bundle["scheduler"])
        trainer.stopper.load_state_dict(bundle["early_stopping"])
        trainer.noise.load_state_dict(bundle["weight_noise"])
        trainer.shuffle_generator.set_state(bundle["shuffle_generator"])
        restore_rng_state(bundle["rng"])
        run = bundle["run_state"]
        self.epoch, self.updates = int(run["epoch"]), int(run["updates"])
        self.wall_seconds = float(run["wall_seconds"])
        self.tb_start_walltime = run["tb_start_walltime"]
        self.initial_valid_nll = run["initial_valid_nll"]
        self.history = [dict(row) for row in run["history"]]


def plain_data(value):
    """Convert to types ``torch.load(weights_only=True)`` and JSON accept (dict/list/scalars/
    tensors): numpy arrays become lists, numpy scalars and paths become Python values."""
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    return str(value)


def changed_keys(old: dict, new: dict, ignored: tuple[str, ...] = RESUME_ONLY_KEYS) -> list[str]:
    """``group.key`` entries that differ between two resolved configs (one level deep)."""
    changed = []
    for group in sorted(set(old) | set(new)):
        a, b = old.get(group), new.get(group)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [
                f"{group}.{key}"
                for key in sorted(set(a) | set(b))
                if key not in ignored and a.get(key) != b.get(key)
            ]
        elif a != b:
            changed.append(group)
    return changed
