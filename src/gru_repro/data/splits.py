"""The data contract every loader fulfils: `Example`, the split names, what kind of data it is
(`DataKind`, `DataFacts`) and `DataSplits`; plus the one way music loaders turn piano rolls into
them (`music_splits`).

A model trained on a `DataSplits` is described by its `DataFacts` alone: training stores them in
checkpoints as plain data (`DataFacts.as_plain`), and sampling reads them back
(`DataFacts.from_plain`) to know whether to draw piano rolls or waveforms, and how.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch

from gru_repro.data.speech_framing import Framing, Normalisation

# The three splits of every data set, in this order everywhere (files, tables, logs).
SPLITS = ("train", "valid", "test")

# One sequence: inputs (T, D_in) and targets (T, D_out), float32, aligned step by step.
Example = tuple[torch.Tensor, torch.Tensor]


class DataKind(str, Enum):
    """The paper's two tasks: next piano-roll frame (binary notes), next waveform samples."""

    MUSIC = "music"
    SPEECH = "speech"

    def __str__(self) -> str:  # "music", in messages and f-strings alike
        return self.value


@dataclass(frozen=True)
class DataFacts:
    """What a model trained on these data needs to be sampled and described.

    kind: music (binary piano rolls) or speech (raw waveform). Speech also has its `framing`
    (samples seen and predicted per step) and the `normalisation` of the waveform, with
    `info["sample_rate"]` in Hz; music has `info["pitch_low"]` (MIDI note of roll column 0)
    and `info["frame_rate"]` (frames per second, None for the published sets). `info` is
    plain data (str, int, float, list, dict): data set name, source, sequence and frame
    counts per split, ...
    """

    kind: DataKind
    framing: Framing | None = None
    normalisation: Normalisation | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DataKind(self.kind))
        if self.kind is DataKind.SPEECH:
            missing = [
                name
                for name, value in (
                    ("framing", self.framing),
                    ("normalisation", self.normalisation),
                    ("info.sample_rate", self.info.get("sample_rate")),
                )
                if value is None
            ]
        else:
            missing = [] if "pitch_low" in self.info else ["info.pitch_low"]
        if missing:
            raise ValueError(f"{self.kind.value} data facts lack {', '.join(missing)}")

    @property
    def dataset(self) -> str:
        return str(self.info.get("dataset", ""))

    def as_plain(self) -> dict[str, Any]:
        """{kind, framing, normalisation, info} of str/int/float/list/dict/None, as stored in
        checkpoints (``torch.load(weights_only=True)`` and JSON read it)."""
        return {
            "kind": self.kind.value,
            "framing": asdict(self.framing) if self.framing else None,
            "normalisation": asdict(self.normalisation) if self.normalisation else None,
            "info": dict(self.info),
        }

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> DataFacts:
        """Read `as_plain`'s dict, or the flat info dict checkpoints held before it.

        The flat form was the loader's info itself: music sets wrote ``kind: "music"``, speech
        sets no kind but ``input_window``, ``target_window``, ``hop`` and
        ``normalisation: {mean, std, note}`` beside the other facts.
        """
        if "info" in plain:
            framing, norm = plain.get("framing"), plain.get("normalisation")
            return cls(
                kind=plain["kind"],
                framing=Framing(**framing) if framing else None,
                normalisation=Normalisation(**norm) if norm else None,
                info=dict(plain["info"]),
            )
        info = dict(plain)
        kind = DataKind(info.pop("kind", DataKind.SPEECH))
        if kind is DataKind.MUSIC:
            return cls(kind=kind, info=info)
        framing = Framing(*(int(info.pop(k)) for k in ("input_window", "target_window", "hop")))
        norm = info.pop("normalisation")
        normalisation = Normalisation(mean=float(norm["mean"]), std=float(norm["std"]))
        return cls(kind=kind, framing=framing, normalisation=normalisation, info=info)


@dataclass
class DataSplits:
    """The three splits of one data set, ready for `make_batches`, and their `facts`."""

    train: list[Example]
    valid: list[Example]
    test: list[Example]
    input_size: int
    output_size: int
    facts: DataFacts

    def split(self, name: str) -> list[Example]:
        """The examples of split `name` (one of `SPLITS`)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}: use one of {', '.join(SPLITS)}")
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

    `info` must hold `pitch_low` and `pitch_high` (P = pitch_high - pitch_low + 1); the facts'
    info adds the data set name and the sequence and frame counts per split.
    """
    width = info["pitch_high"] - info["pitch_low"] + 1
    info = {
        **info,
        "dataset": name,
        "n_sequences": {s: len(rolls[s]) for s in SPLITS},
        "n_frames": {s: int(sum(len(r) for r in rolls[s])) for s in SPLITS},
    }
    return DataSplits(
        *(rolls_to_examples(rolls[s]) for s in SPLITS),
        input_size=width,
        output_size=width,
        facts=DataFacts(DataKind.MUSIC, info=info),
    )
