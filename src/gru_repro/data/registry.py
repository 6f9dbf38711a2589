"""Data set names -> loader and fetcher functions.

Targets are "module:function" strings, imported only when used, so that `import gru_repro.data`
stays light and a missing optional module (e.g. speech.py) only matters for its own names.
Every loader has the signature `loader(*, data_dir, mirror=None, **options) -> DataSplits`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gru_repro.data.errors import DataError, UnknownDatasetError
from gru_repro.data.splits import DataSplits


@dataclass(frozen=True)
class LoaderSpec:
    target: str  # "module:function"
    fixed: dict[str, Any] = field(default_factory=dict)  # keyword arguments the name implies
    description: str = ""
    kind: str = "music"  # "music" (binary piano rolls) or "speech" (real-valued audio samples)


LOADERS: dict[str, LoaderSpec] = {
    "jsb": LoaderSpec("gru_repro.data.music:load_music", {"dataset": "jsb"}, "JSB Chorales"),
    "nottingham": LoaderSpec(
        "gru_repro.data.music:load_music", {"dataset": "nottingham"}, "Nottingham"
    ),
    "musedata": LoaderSpec("gru_repro.data.music:load_music", {"dataset": "musedata"}, "MuseData"),
    "piano_midi": LoaderSpec(
        "gru_repro.data.music:load_music", {"dataset": "piano_midi"}, "Piano-midi.de"
    ),
    "midi_folder": LoaderSpec(
        "gru_repro.data.music:load_midi_folder", {}, "your MIDI files in train/valid/test folders"
    ),
    "synthetic": LoaderSpec("gru_repro.data.synthetic:load_synthetic", {}, "tiny smoke-test set"),
    "speech_a": LoaderSpec(
        "gru_repro.data.speech:load_speech_a", {}, "FSDD, short sequences", "speech"
    ),
    "speech_b": LoaderSpec(
        "gru_repro.data.speech:load_speech_b", {}, "FSDD, long sequences", "speech"
    ),
    "audio_folder": LoaderSpec(
        "gru_repro.data.speech:load_audio_folder", {}, "your WAV/FLAC files", "speech"
    ),
}

# Names `python -m gru_repro.data.fetch --dataset NAME` accepts. Music sets go through the
# manifest in fetch.py; others name a function fetcher(data_dir, mirror) -> Path.
FETCHERS: dict[str, str] = {
    "jsb": "gru_repro.data.fetch:fetch_music",
    "nottingham": "gru_repro.data.fetch:fetch_music",
    "musedata": "gru_repro.data.fetch:fetch_music",
    "piano_midi": "gru_repro.data.fetch:fetch_music",
    "fsdd": "gru_repro.data.speech:fetch_fsdd",
}


def resolve(target: str) -> Callable[..., Any]:
    """Import "module:function" and return the function, with a clear error if it is missing."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise DataError(
            f"{target} is not available: module {module_name} does not exist in this "
            "checkout (update the project, or pick another data set)"
        ) from err
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise DataError(f"{target} is not available: {module_name} has no function {attr}") from err


def check_name(name: str, table: dict[str, Any], what: str = "data set") -> None:
    if name not in table:
        valid = ", ".join(sorted(table))
        raise UnknownDatasetError(f"unknown {what} {name!r}; valid names: {valid}")


def load_splits(
    name: str, *, data_dir: str | Path, mirror: str | Path | None = None, **options: Any
) -> DataSplits:
    """Load data set `name` (fetching and verifying its files first when needed).

    `options` are the data set's own keys (see configs/data/<name>.yaml); a key the loader
    does not take is an error naming the keys it does take.
    """
    check_name(name, LOADERS)
    spec = LOADERS[name]
    loader = resolve(spec.target)
    params = inspect.signature(loader).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        allowed = set(params) - set(spec.fixed) - {"data_dir", "mirror"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(
                f"data set {name!r} does not take option(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(allowed)) or 'none'}"
            )
    return loader(data_dir=data_dir, mirror=mirror, **spec.fixed, **options)
