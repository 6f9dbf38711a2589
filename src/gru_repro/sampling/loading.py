"""Rebuild a trained model from a run folder or a checkpoint file, for sampling.

A checkpoint is the bundle the training loop writes (``Trainer.model_checkpoint``,
docs/ARCHITECTURE.md): ``{"model": state_dict, "config": plain resolved config,
"model_options": build_model's arguments, "input_size", "output_size", "data_info":
DataFacts.as_plain(), ...}``, read by ``training.checkpoint.load_checkpoint``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from gru_repro.data.splits import DataFacts
from gru_repro.models import build_model
from gru_repro.training.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

CHECKPOINT_IN_RUN = Path("checkpoints") / "best.pt"
BUNDLE_KEYS = ("model", "config", "model_options", "input_size", "output_size", "data_info")


@dataclass
class LoadedRun:
    """A run's model (eval mode, on the CPU), its data facts, resolved config and checkpoint."""

    model: nn.Module
    facts: DataFacts
    config: dict[str, Any]
    checkpoint: Path


def find_checkpoint(path: str | Path) -> Path:
    """A run folder (holding checkpoints/best.pt) or a .pt file -> the checkpoint file."""
    path = Path(path)
    if path.is_dir():
        candidate = path / CHECKPOINT_IN_RUN
        if not candidate.is_file():
            raise FileNotFoundError(
                f"run folder {path} has no {CHECKPOINT_IN_RUN}: pass a finished run folder "
                "or the path of a .pt checkpoint"
            )
        return candidate
    if not path.is_file():
        raise FileNotFoundError(f"no run folder or checkpoint file at {path}")
    return path


def load_run(path: str | Path) -> LoadedRun:
    """Load the best checkpoint of a run (or a given .pt file) into an eval-mode model."""
    checkpoint = find_checkpoint(path)
    bundle = load_checkpoint(checkpoint)
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise ValueError(f"checkpoint {checkpoint} lacks {missing}; was it written by training?")
    options = bundle["model_options"]  # build_model's arguments but the sizes, unit included
    model = build_model(
        input_size=int(bundle["input_size"]), output_size=int(bundle["output_size"]), **options
    )
    model.load_state_dict(bundle["model"])
    model.eval()
    try:
        facts = DataFacts.from_plain(bundle["data_info"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {checkpoint}: unreadable data_info ({error!r})") from error
    log.info("loaded %s (%s, data %s)", checkpoint, options["unit"], facts.dataset or "?")
    return LoadedRun(model, facts, dict(bundle["config"]), checkpoint)
