"""Checkpoints: ``state_dict`` bundles of plain data, written atomically by
``gru_repro.atomic.atomic_torch_save`` and loadable with ``torch.load(path, weights_only=True)``;
plus capture/restore of every RNG a run uses."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch


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


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint (``weights_only=True``: no arbitrary code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: say which and what to do
        raise ValueError(
            f"checkpoint {path} is unreadable ({exc.__class__.__name__}); delete it, or "
            "retrain the run with trainer.force=true"
        ) from exc


def capture_rng_state() -> dict:
    """Global RNG states (torch, numpy, python) as plain data / tensors (weights_only-safe)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["name"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["gauss"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
