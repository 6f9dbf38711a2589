"""Synthetic run folders in the documented format (docs/ARCHITECTURE.md, "Runs").

Test support for the reports (collect, Table 2, Figure 3, README, reproduce): the numbers are
a smooth function of (unit, lr, seed), so the best candidate is known in advance.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.reports.protocol import run_dir

UNIT_OFFSET = {"tanh": 0.6, "gru": 0.0, "lstm": 0.2}  # nats added to the fake NLL
SEQAVG_OFFSET = 0.25  # nats: the fake sequence-averaged NLL minus the frame-weighted one


def fake_valid_nll(unit: str, lr: float, best_lr: float) -> float:
    """A bowl in log(lr) with its minimum at `best_lr`: 3 + offset + (log lr - log best)^2 / 10."""
    return 3.0 + UNIT_OFFSET.get(unit, 0.0) + (math.log(lr) - math.log(best_lr)) ** 2 / 10


def write_fake_run(
    runs_root: str | Path,
    experiment: str,
    unit: str,
    lr: float,
    seed: int,
    *,
    valid_nll: float,
    status: str = "early_stopped",
    epochs: int = 4,
    dataset: str = "synthetic",
    max_epochs: int = 50,
    best_epoch: int | None = None,
    eval_every: int = 1,
    folder: Path | None = None,
    seqavg_offset: float | None = SEQAVG_OFFSET,
    extra: dict | None = None,
) -> Path:
    """One run folder (``folder``, or the layout of a plan without recorded folders).
    ``eval_every > 1`` leaves ``valid_nll`` empty in curves.csv on epochs
    without validation (every ``eval_every``-th epoch and the last one have it), as
    ``training/run_files.py`` writes it for ``trainer.eval_every > 1``. Each split's
    sequence-averaged NLL (``<split>_nll_seqavg``) is its frame-weighted one + ``seqavg_offset``
    (None: the run records none, as runs before it did); ``extra`` keys are added to (or replace
    those of) metrics.json."""
    folder = folder or run_dir(runs_root, experiment, unit, lr, seed)
    jitter = 0.01 * seed  # seeds differ a little, deterministically
    diverged = status == "diverged"
    final = {
        "train_nll": None if diverged else valid_nll - 0.3 + jitter,
        "valid_nll": None if diverged else valid_nll + jitter,
        "test_nll": None if diverged else valid_nll + 0.1 + jitter,
    }
    metrics = {
        "dataset": dataset,
        "unit": unit,
        "hidden_size": 8,
        "n_params_recurrent": 100,
        "n_params_total": 150,
        "lr": lr,
        "seed": seed,
        "optim": "rmsprop",
        "epochs": epochs,
        "updates": 10 * epochs,
        "wall_seconds": 1.5 * epochs,
        "max_epochs": max_epochs,
        "best_epoch": epochs if best_epoch is None else best_epoch,
        "status": status,
        "git_commit": "fake",
        "nll_convention": "frame-weighted",
        **final,
    }
    if seqavg_offset is not None:
        metrics |= {
            f"{k}_seqavg": None if v is None else v + seqavg_offset for k, v in final.items()
        }
    metrics |= extra or {}
    rows = ["epoch,updates,wall_seconds,train_nll,valid_nll"]
    for epoch in range(1, epochs + 1):
        decay = 2.0 / epoch  # curves fall towards the final numbers
        train = (final["train_nll"] or valid_nll) + decay
        validated = epoch % eval_every == 0 or epoch == epochs
        valid = (final["valid_nll"] or valid_nll) + decay if validated else ""
        rows.append(f"{epoch},{10 * epoch},{1.5 * epoch},{train},{valid}")
    atomic_write_text(folder / "curves.csv", "\n".join(rows) + "\n")
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return folder
