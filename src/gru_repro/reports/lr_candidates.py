"""The paper's learning-rate candidates: 10 values exp(u), u ~ U(-12, -6), drawn once.

The paper (Chung et al. 2014) picks the learning rate by validation NLL out of 10 candidates
exp(u), u ~ U(-12, -6). We draw them once from a fixed seed so every engineer and every data
set searches the same 10 values; `scripts/draw_lr_candidates.py` writes them into the experiment
configs and `--check` verifies the configs still hold exactly this draw.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

LR_SEED = 20141211  # arXiv:1412.3555 was submitted on 2014-12-11
N_CANDIDATES = 10  # the paper's training protocol
LOG_LR_LOW, LOG_LR_HIGH = -12.0, -6.0  # u ~ U(-12, -6): lr in [6.1e-6, 2.5e-3]
SIGNIFICANT_DIGITS = 3  # rounded so that run folder names stay readable (lr=0.000123)

# The line in an experiment config that holds the grid, e.g. `      optim.lr: 1.2e-05,...`
_LR_LINE = re.compile(r"^(?P<indent>\s*)optim\.lr:\s*(?P<values>[^#\n]*?)\s*(?P<comment>#.*)?$")


def _round_significant(x: float, digits: int) -> float:
    return float(f"{x:.{digits - 1}e}")


def draw_lr_candidates(
    seed: int = LR_SEED,
    n: int = N_CANDIDATES,
    low: float = LOG_LR_LOW,
    high: float = LOG_LR_HIGH,
) -> list[float]:
    """Sorted learning rates exp(u), u ~ U(low, high), rounded to 3 significant digits."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(low, high, size=n)
    return sorted(_round_significant(math.exp(v), SIGNIFICANT_DIGITS) for v in u)


def format_lrs(lrs: list[float]) -> str:
    """Comma-separated, as Hydra's basic sweeper reads a sweep (`optim.lr: a,b,c`)."""
    return ",".join(repr(float(lr)) for lr in lrs)


def read_lr_grid(config_path: str | Path) -> list[float]:
    """The `optim.lr` sweep values written in one experiment config."""
    path = Path(config_path)
    for line in path.read_text().splitlines():
        match = _LR_LINE.match(line)
        if match:
            try:
                return [float(v) for v in match["values"].split(",")]
            except ValueError as err:
                raise ValueError(
                    f"{path}: optim.lr sweep {match['values']!r} is not a comma-separated list "
                    "of numbers; regenerate it with scripts/draw_lr_candidates.py"
                ) from err
    raise ValueError(
        f"{path}: no `optim.lr:` sweep line under hydra.sweeper.params; "
        "add one with scripts/draw_lr_candidates.py"
    )


def write_lr_grid(config_path: str | Path, lrs: list[float]) -> bool:
    """Rewrite the `optim.lr:` sweep line of a config in place (atomically); True if changed."""
    from gru_repro.atomic import atomic_write_text

    path = Path(config_path)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        match = _LR_LINE.match(line.rstrip("\n"))
        if match:
            comment = f"  {match['comment']}" if match["comment"] else ""
            lines[i] = f"{match['indent']}optim.lr: {format_lrs(lrs)}{comment}\n"
            break
    else:
        raise ValueError(f"{path}: no `optim.lr:` sweep line to rewrite")
    new_text = "".join(lines)
    if new_text != text:
        atomic_write_text(path, new_text)
    return new_text != text
