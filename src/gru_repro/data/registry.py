"""Data set names -> loader functions, and `load_splits`, the one way to load a data set.

Every loader has the signature `loader(*, data_dir, mirror=None, **options) -> DataSplits`.
`gru_repro.data` imports this module on first use of `LOADERS` or `load_splits`, so that
`import gru_repro.data` does not pull in the readers (pretty_midi, soundfile, scipy).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gru_repro.data.errors import UnknownDatasetError
from gru_repro.data.music import load_midi_folder, load_music
from gru_repro.data.speech import FSDD_CUTS, load_audio_folder, load_fsdd
from gru_repro.data.splits import DataSplits
from gru_repro.data.synthetic import load_synthetic


@dataclass(frozen=True)
class LoaderSpec:
    load: Callable[..., DataSplits]
    description: str = ""
    fixed: dict[str, Any] = field(default_factory=dict)  # keyword arguments the name implies
    defaults: dict[str, Any] = field(default_factory=dict)  # the name's own defaults of options


def _music(name: str, description: str) -> LoaderSpec:
    return LoaderSpec(load_music, description, {"dataset": name})


def _fsdd(name: str, description: str) -> LoaderSpec:
    return LoaderSpec(load_fsdd, description, {"dataset": name}, FSDD_CUTS[name])


LOADERS: dict[str, LoaderSpec] = {
    "jsb": _music("jsb", "JSB Chorales"),
    "nottingham": _music("nottingham", "Nottingham"),
    "musedata": _music("musedata", "MuseData"),
    "piano_midi": _music("piano_midi", "Piano-midi.de"),
    "midi_folder": LoaderSpec(load_midi_folder, "your MIDI files in train/valid/test folders"),
    "synthetic": LoaderSpec(load_synthetic, "tiny smoke-test set"),
    "speech_a": _fsdd("speech_a", "FSDD, short sequences"),
    "speech_b": _fsdd("speech_b", "FSDD, long sequences"),
    "audio_folder": LoaderSpec(load_audio_folder, "your WAV/FLAC files"),
}


def options_of(spec: LoaderSpec) -> set[str]:
    """The option keys a data set's config may set: its loader's keywords but the implied ones."""
    return set(inspect.signature(spec.load).parameters) - set(spec.fixed) - {"data_dir", "mirror"}


def load_splits(
    name: str, *, data_dir: str | Path, mirror: str | Path | None = None, **options: Any
) -> DataSplits:
    """Load data set `name` (fetching and verifying its files first when needed).

    `options` are the data set's own keys (see configs/data/<name>.yaml); a key the loader
    does not take is an error naming the keys it does take.
    """
    if name not in LOADERS:
        raise UnknownDatasetError(
            f"unknown data set {name!r}; valid names: {', '.join(sorted(LOADERS))}"
        )
    spec = LOADERS[name]
    allowed = options_of(spec)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"data set {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(allowed)) or 'none'}"
        )
    return spec.load(data_dir=data_dir, mirror=mirror, **spec.fixed, **{**spec.defaults, **options})


def load_configured_splits(data_settings: Any) -> DataSplits:
    """The splits a run's `data` config names (its composed dataclass: the data set's name,
    `data_dir`, `mirror` and the set's own keys). An empty mirror (`DATA_MIRROR=`) means none."""
    data = asdict(data_settings)
    data["mirror"] = data["mirror"] or None
    return load_splits(data.pop("name"), **data)
