"""TensorBoard views of a run: the epoch NLLs under the data set, and Figure 3 as custom scalars.

Every epoch's NLLs go to `train/nll` and `valid/nll` (one chart for every run in the log dir)
and again under the data set and unit, so that one data set's units sit together without
filtering runs by hand:

    <dataset>/<unit>/train_nll    e.g. jsb/gru/train_nll   (the same value as train/nll)
    <dataset>/<unit>/valid_nll

The Time Series tab groups tags by their first component, so each data set is a group of its
own (one card per unit and split; lines are runs: learning rates and seeds). The Custom Scalars
tab shows the layout every run writes (`figure3_layout`), the paper's Figure 3 per data set:

    category "Figure 3: <dataset>"
        "<dataset>: train and valid NLL, every unit (the paper's panel)"
        "<dataset>: validation NLL per unit"      every unit's valid_nll tag, all runs
        "<dataset>: training NLL per unit (...)"  every unit's train_nll tag
        "<dataset>/<unit>: train and valid NLL"   one chart per unit

TensorBoard merges the layouts of all runs in a log dir by category title (charts once each),
so a sweep's runs build the whole set. Figure 3 plots the selected learning rate's seed-1 run:
filter runs by e.g. `lr=0.00174/seed=1`. The y axis of a chart is linear until its log-scale
button is pressed; TensorBoard has no way to set that from an event file.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from torch.utils.tensorboard import SummaryWriter


class NllTags(NamedTuple):
    train: str
    valid: str


def _name(value: object, default: str) -> str:
    """A tag component: no slash, never empty."""
    text = str(value or default).strip().replace("/", "_")
    return text or default


def nll_tags(dataset: object, unit: object) -> NllTags:
    """The run's NLL tags under its data set, e.g. ("jsb/gru/train_nll", "jsb/gru/valid_nll")."""
    prefix = f"{_name(dataset, 'data')}/{_name(unit, 'unit')}"
    return NllTags(f"{prefix}/train_nll", f"{prefix}/valid_nll")


def figure3_layout(dataset: object, unit: object, train_note: str) -> dict:
    """`SummaryWriter.add_custom_scalars` layout: Figure 3's panels of this run's data set.

    `train_note` says how the training NLL was measured, e.g. "epoch mean, noisy weights".
    Tags are regular expressions, matched from the tag's start.
    """
    data, unit_name = _name(dataset, "data"), _name(unit, "unit")
    data_re = re.escape(data)
    charts = {
        f"{data}: train and valid NLL, every unit (the paper's panel)": [
            "Multiline",
            [rf"{data_re}/[^/]+/(train|valid)_nll$"],
        ],
        f"{data}: validation NLL per unit": ["Multiline", [rf"{data_re}/[^/]+/valid_nll$"]],
        f"{data}: training NLL per unit ({train_note})": [
            "Multiline",
            [rf"{data_re}/[^/]+/train_nll$"],
        ],
        f"{data}/{unit_name}: train and valid NLL": [
            "Multiline",
            [rf"{data_re}/{re.escape(unit_name)}/(train|valid)_nll$"],
        ],
    }
    return {f"Figure 3: {data}": charts}


def train_note(eval_train: bool, weight_noise: float | None) -> str:
    """How the run's training NLL is measured (training/loop.py): a clean pass after the epoch
    with trainer.eval_train, else the running mean over the epoch's (noisy) updates."""
    if eval_train:
        return "clean pass"
    return "epoch mean, noisy weights" if weight_noise else "epoch mean"


def start(writer: SummaryWriter, info: dict, *, eval_train: bool) -> NllTags:
    """Write the run's Figure 3 layout (once per writer) and return its data-set NLL tags;
    `info` is the run's metrics.json header (dataset, unit, weight_noise)."""
    dataset, unit = info.get("dataset"), info.get("unit")
    note = train_note(eval_train, info.get("weight_noise"))
    writer.add_custom_scalars(figure3_layout(dataset, unit, note))
    return nll_tags(dataset, unit)


def add_epoch_nll(
    writer: SummaryWriter,
    tags: NllTags,
    train_nll: float,
    valid_nll: float | None,
    step: int,
    walltime: float,
    valid_nll_noisy: float | None = None,
) -> None:
    """One epoch's NLLs at `step` (updates): `train/nll`, `valid/nll` and the data-set tags;
    no validation point on epochs without validation (`valid_nll` None); the noisy validation
    NLL, when measured, as `valid/nll_noisy` and `<dataset>/<unit>/valid_nll_noisy`."""
    for tag in ("train/nll", tags.train):
        writer.add_scalar(tag, train_nll, step, walltime)
    if valid_nll is not None:
        for tag in ("valid/nll", tags.valid):
            writer.add_scalar(tag, valid_nll, step, walltime)
    if valid_nll_noisy is not None:
        for tag in ("valid/nll_noisy", f"{tags.valid}_noisy"):
            writer.add_scalar(tag, valid_nll_noisy, step, walltime)
