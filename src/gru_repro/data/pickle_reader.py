"""Reader for the original Boulanger-Lewandowski pickles, through a restricted unpickler.

Format: a Python 2 pickle of a dict {'train', 'valid', 'test'} -> list of sequences -> list of
frames -> list of active MIDI note numbers (ints, often numpy integer scalars). A plain
`pickle.load` would run whatever callable the file names; `NoteListUnpickler` resolves only
the few globals that numpy scalars need and refuses everything else, naming what was asked.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from gru_repro.data.errors import UnreadableFileError, UnsafePickleError
from gru_repro.data.splits import SPLITS

log = logging.getLogger(__name__)


def _numpy_scalar() -> Any:
    try:  # numpy >= 2
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


def _codecs_encode() -> Any:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, 'latin1'); a pure
    # str -> bytes conversion, needed for the raw bytes of a numpy scalar.
    import _codecs

    return _codecs.encode


# (module, name) -> the object it resolves to; everything else is refused.
_ALLOWED = {
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): _codecs_encode,
}


class NoteListUnpickler(pickle.Unpickler):
    """Unpickler that only builds numpy scalars and dtypes (plus builtin containers)."""

    def __init__(self, file: Any, *, source: str = "pickle", **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]()
        allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED)
        raise UnsafePickleError(
            f"{self.source}: the pickle asks for {module}.{name}, which is refused (only "
            f"{allowed} are allowed); this is not a note-list pickle, do not load it"
        )


def read_note_pickle(path: str | Path) -> dict[str, list[list[list[int]]]]:
    """Read a note-list pickle into {'train', 'valid', 'test'} -> sequences -> frames -> notes.

    Note numbers come back as Python ints. Raises UnsafePickleError for a forbidden global and
    UnreadableFileError for anything else that is not this format.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = NoteListUnpickler(f, source=str(path), encoding="latin1").load()
    except UnsafePickleError:
        raise
    except Exception as err:  # truncated or foreign files fail in many ways inside pickle
        raise UnreadableFileError(
            f"{path}: not a readable note-list pickle ({type(err).__name__}: {err}); "
            "fetch the file again or convert it to a MIDI folder"
        ) from err
    if not isinstance(raw, dict) or not set(SPLITS) <= set(raw):
        keys = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise UnreadableFileError(
            f"{path}: expected a dict with keys train/valid/test, found {keys}; "
            "this is not a Boulanger-Lewandowski note-list pickle"
        )
    try:
        return {
            split: [[[int(note) for note in frame] for frame in seq] for seq in raw[split]]
            for split in SPLITS
        }
    except (TypeError, ValueError) as err:
        raise UnreadableFileError(
            f"{path}: frames must be lists of MIDI note numbers ({err}); "
            "this is not a Boulanger-Lewandowski note-list pickle"
        ) from err


def notes_to_roll(frames: list[list[int]], pitch_low: int, pitch_high: int) -> np.ndarray:
    """Binary piano roll (T, pitch_high - pitch_low + 1) uint8 from lists of note numbers.

    Notes outside [pitch_low, pitch_high] are dropped (the caller logs how many).
    """
    roll = np.zeros((len(frames), pitch_high - pitch_low + 1), dtype=np.uint8)
    for t, frame in enumerate(frames):
        for note in frame:
            if pitch_low <= note <= pitch_high:
                roll[t, note - pitch_low] = 1
    return roll
