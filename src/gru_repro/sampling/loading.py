"""Rebuild a trained model from a run folder or a checkpoint file, for sampling.

A checkpoint is the bundle the training entry writes (docs/ARCHITECTURE.md):
``{"model": state_dict, "config": plain resolved config, "input_size", "output_size",
"data_info", ...}``, loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

CHECKPOINT_IN_RUN = Path("checkpoints") / "best.pt"
# Keys of config["model"] that describe the config entry, not the model.
_NOT_MODEL_OPTIONS = {"_target_", "name", "_name_"}


@dataclass
class LoadedRun:
    model: nn.Module
    data_info: dict[str, Any]
    config: dict[str, Any]
    checkpoint: Path
    extra: dict[str, Any] = field(default_factory=dict)


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


def model_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``build_model`` from the resolved config's ``model`` group."""
    model_cfg = config.get("model")
    if not isinstance(model_cfg, Mapping) or "unit" not in model_cfg:
        raise ValueError(
            "checkpoint config has no model group with a 'unit' key; "
            "it was not written by gru_repro.train"
        )
    options = {k: v for k, v in model_cfg.items() if k not in _NOT_MODEL_OPTIONS}
    from gru_repro.models import build_model

    accepted = inspect.signature(build_model).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    if not takes_any:
        options = {k: v for k, v in options.items() if k in accepted}
    return options


def load_run(path: str | Path) -> LoadedRun:
    """Load the best checkpoint of a run (or a given .pt file) into an eval-mode model."""
    from gru_repro.models import build_model

    checkpoint = find_checkpoint(path)
    try:
        bundle = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"cannot load checkpoint {checkpoint}: {error}") from error
    missing = [k for k in ("model", "config", "input_size", "output_size") if k not in bundle]
    if missing:
        raise ValueError(f"checkpoint {checkpoint} lacks {missing}; was it written by training?")
    config = dict(bundle["config"])
    # Training stores the exact build_model arguments; older bundles only the config.
    options = dict(bundle.get("model_options") or model_options(config))
    options.pop("input_size", None)
    options.pop("output_size", None)
    unit = options.pop("unit", None)
    if unit is None:
        raise ValueError(
            f"checkpoint {checkpoint} names no model unit; was it written by training?"
        )
    model = build_model(unit, int(bundle["input_size"]), int(bundle["output_size"]), **options)
    model.load_state_dict(bundle["model"])
    model.eval()
    data_info = dict(bundle.get("data_info") or {})
    extra = {k: v for k, v in bundle.items() if k not in ("model", "config", "data_info")}
    log.info("loaded %s (%s, data %s)", checkpoint, unit, data_info.get("dataset", "?"))
    return LoadedRun(model, data_info, config, checkpoint, extra)
