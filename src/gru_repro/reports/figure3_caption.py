"""What Figure 3's lines are, read from the plotted runs' own files, for the figure's caption.

The training NLL in curves.csv is not a clean pass over the training set: by default it is the
running mean over the epoch's updates, measured at the noisy weights the update used
(`training/loop.py`, `_train_epoch`); with `trainer.eval_train=true` it is a clean pass after
the epoch. Validation is clean unless `trainer.eval_with_noise=true` (the released code's way).
The caption says which, from each run's `.hydra/config.yaml` (trainer section) and
metrics.json (`weight_noise`); a setting a run does not record is taken at the configs'
default (configs/trainer/default.yaml).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from omegaconf import OmegaConf

from gru_repro.reports.collect import Run

log = logging.getLogger(__name__)

HYDRA_CONFIG = ".hydra/config.yaml"  # written by Hydra into every run folder
DEFAULTS = {"eval_train": False, "eval_with_noise": False}  # configs/trainer/default.yaml


class CurveSettings(NamedTuple):
    """How a run measured the NLLs of its curves."""

    eval_train: bool  # train NLL: a clean pass after each epoch (else the noisy running mean)
    eval_with_noise: bool  # validation with weight noise
    weight_noise: float | None  # std of the weight noise; None when the run does not say


def _trainer_config(run: Run) -> dict:
    path = run.path / HYDRA_CONFIG
    if not path.is_file():
        return {}
    try:
        trainer = OmegaConf.load(path).get("trainer", {})
        return OmegaConf.to_container(trainer) if trainer else {}
    except Exception as err:  # a damaged config costs the caption's precision, not the report
        log.warning("%s: unreadable (%s); caption assumes the default trainer settings", path, err)
        return {}


def curve_settings(run: Run) -> CurveSettings:
    trainer = _trainer_config(run)
    noise = run.metrics.get("weight_noise", trainer.get("weight_noise"))
    return CurveSettings(
        eval_train=bool(trainer.get("eval_train", DEFAULTS["eval_train"])),
        eval_with_noise=bool(trainer.get("eval_with_noise", DEFAULTS["eval_with_noise"])),
        weight_noise=float(noise) if isinstance(noise, (int, float)) else None,
    )


def _noise(settings: CurveSettings) -> str:
    if settings.weight_noise is None:
        return "weight noise not recorded"
    if settings.weight_noise == 0:
        return "no weight noise"
    return f"weight noise std {settings.weight_noise:g}"


def train_line(settings: CurveSettings) -> str:
    if settings.eval_train:
        return "a clean pass over the training set after each epoch"
    where = "at the noisy weights of training, " if settings.weight_noise else ""
    return (
        f"the running mean over each epoch's updates ({where}{_noise(settings)}), "
        "not a clean pass at the epoch's end"
    )


def valid_line(settings: CurveSettings) -> str:
    if settings.eval_with_noise and settings.weight_noise:
        return f"validation NLL after each epoch, with weight noise ({_noise(settings)})"
    return "validation NLL after each epoch, clean weights"


def train_legend(runs: Iterable[Run]) -> str:
    """The legend's name for the dashed lines: what all plotted runs share, else plain."""
    kinds = {s.eval_train or not s.weight_noise for s in map(curve_settings, runs)}
    return "training NLL (under weight noise)" if kinds == {False} else "training NLL"


def _per_column(described: dict[str, dict[str, None]]) -> str:
    """One description, or each with the columns it applies to when the columns differ."""
    if len(described) == 1:
        return next(iter(described))
    return "; ".join(f"{text} ({', '.join(columns)})" for text, columns in described.items())


def caption(columns: Iterable[tuple[str, list[Run]]], densities: Iterable[str] = ()) -> str:
    """The figure's caption for (column label, plotted runs) pairs; `densities` are the labels
    of the columns whose NLL is that of a density (speech), which can be negative."""
    train: dict[str, dict[str, None]] = {}  # description -> column labels (ordered set)
    valid: dict[str, dict[str, None]] = {}
    for label, runs in columns:
        for settings in map(curve_settings, runs):
            train.setdefault(train_line(settings), {})[label] = None
            valid.setdefault(valid_line(settings), {})[label] = None
    text = (
        "Per unit, the seed-1 run of the learning rate selected by validation NLL, from epoch 1; "
        "top row against updates, bottom row against wall-clock seconds."
    )
    if train:
        text += f" Solid: {_per_column(valid)}. Dashed: training NLL, {_per_column(train)}."
    densities = list(densities)
    if densities:
        text += (
            f" {', '.join(densities)}: NLL of a Gaussian-mixture density over the frame's "
            "normalised samples, negative where the density exceeds 1 (docs/speech.md)."
        )
    return text
