"""The counters and curve history of a run, as saved in checkpoints/last.pt."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunState:
    epoch: int = 0  # last finished epoch (0 = only the initial evaluation)
    updates: int = 0
    overflow_updates: int = 0  # updates whose gradient was recomputed on a scaled loss (clipping)
    wall_seconds: float = 0.0  # training wall time so far, summed over resumed sessions
    tb_start_walltime: float | None = None  # unix time of update 0 on TensorBoard's time axis
    initial_valid_nll: float | None = None  # reference for the divergence test
    diverged_epoch: int | None = None
    diverged_reason: str | None = None
    history: list[dict] = field(default_factory=list)  # curves.csv rows
