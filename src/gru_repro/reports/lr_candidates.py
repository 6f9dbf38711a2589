"""The paper's learning-rate candidates: 10 values exp(u), u ~ U(-12, -6), drawn once.

The paper (Chung et al. 2014) picks the learning rate by validation NLL out of 10 candidates
exp(u), u ~ U(-12, -6). We draw them once from a fixed seed so every engineer and every data
set searches the same 10 values; `scripts/draw_lr_candidates.py` writes them into the one grid
every experiment includes (configs/search/paper.yaml, `hydra.sweeper.params`) and `--check`
verifies that it still holds exactly this draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from gru_repro.atomic import atomic_write_text

LR_SEED = 20141211  # arXiv:1412.3555 was submitted on 2014-12-11
N_CANDIDATES = 10  # the paper's training protocol
LOG_LR_LOW, LOG_LR_HIGH = -12.0, -6.0  # u ~ U(-12, -6): lr in [6.1e-6, 2.5e-3]
SIGNIFICANT_DIGITS = 3  # rounded so that run folder names stay readable (lr=0.000123)
LR_KEY = "optim.lr"  # its key in a configs/search/ file (`# @package hydra.sweeper.params`)


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


def _sweep_text(path: Path) -> str:
    """The `optim.lr` sweep of a configs/search/ file as written (OmegaConf reads the YAML)."""
    value = OmegaConf.load(path).get(LR_KEY)
    if value is None:
        raise ValueError(
            f"{path}: no `{LR_KEY}:` sweep (a configs/search/ file is `# @package "
            "hydra.sweeper.params`); add one with scripts/draw_lr_candidates.py"
        )
    return str(value)


def read_lr_grid(search_path: str | Path) -> list[float]:
    """The learning rates a configs/search/ file sweeps, parsed as Hydra's sweeper parses them."""
    from gru_repro.config.store import sweep_values  # imports torch: keep reports/ free of it

    path = Path(search_path)
    text = _sweep_text(path)
    try:
        return [float(v) for v in sweep_values(LR_KEY, text)]
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{path}: {LR_KEY} sweep {text!r} is not a comma-separated list of numbers; "
            "regenerate it with scripts/draw_lr_candidates.py"
        ) from err


def write_lr_grid(search_path: str | Path, lrs: list[float]) -> bool:
    """Put ``lrs`` in place of the `optim.lr` sweep of a configs/search/ file (atomically),
    keeping every other line and the comment; True if the file changed. The old value is the
    text OmegaConf reads, replaced where it is written: the YAML's comments survive (writing the
    file back through OmegaConf would drop them)."""
    path = Path(search_path)
    text = path.read_text()
    written = f"{LR_KEY}: {_sweep_text(path)}"
    if text.count(written) != 1:
        raise ValueError(f"{path}: `{written}` is not written once on one line; rewrite it so")
    new_text = text.replace(written, f"{LR_KEY}: {format_lrs(lrs)}")
    if new_text != text:
        atomic_write_text(path, new_text)
    return new_text != text
