"""The plain data types every loader returns (`Example`, `DataSplits`) and the one way music
loaders turn piano rolls into them (`music_splits`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gru_repro.data.cache import SPLITS

# One sequence: inputs (T, D_in) and targets (T, D_out), float32, aligned step by step.
Example = tuple[torch.Tensor, torch.Tensor]


@dataclass
class DataSplits:
    """The three splits of one data set, ready for `make_batches`.

    `info` is plain data (str, int, float, list, dict) so that it can go into checkpoints and
    `metrics.json` as is: data set name, pitch range, frame rate, sequence and frame counts, ...
    """

    train: list[Example]
    valid: list[Example]
    test: list[Example]
    input_size: int
    output_size: int
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        """The examples of split `name` ('train', 'valid' or 'test')."""
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}: use 'train', 'valid' or 'test'")
        return getattr(self, name)


def rolls_to_examples(rolls: list[np.ndarray]) -> list[Example]:
    """Next-frame prediction pairs from binary piano rolls.

    Each roll (T, P) uint8 gives inputs = frames 1..T-1 and targets = frames 2..T, both
    (T-1, P) float32, as in the released code. The two are views of one float tensor (no
    copy), so never modify them in place. Rolls shorter than 2 frames predict nothing and are
    dropped by the callers before this point.
    """
    examples = []
    for roll in rolls:
        frames = torch.from_numpy(np.ascontiguousarray(roll)).to(torch.float32)  # (T, P)
        examples.append((frames[:-1], frames[1:]))
    return examples


def music_splits(name: str, rolls: dict[str, list[np.ndarray]], info: dict[str, Any]) -> DataSplits:
    """DataSplits of next-frame pairs from the binary rolls (T, P) of each split.

    `info` must hold `pitch_low` and `pitch_high` (P = pitch_high - pitch_low + 1); the result's
    info adds the data set name, kind "music", and the sequence and frame counts per split.
    """
    width = info["pitch_high"] - info["pitch_low"] + 1
    info = {
        **info,
        "dataset": name,
        "kind": "music",
        "n_sequences": {s: len(rolls[s]) for s in SPLITS},
        "n_frames": {s: int(sum(len(r) for r in rolls[s])) for s in SPLITS},
    }
    return DataSplits(
        train=rolls_to_examples(rolls["train"]),
        valid=rolls_to_examples(rolls["valid"]),
        test=rolls_to_examples(rolls["test"]),
        input_size=width,
        output_size=width,
        info=info,
    )
