"""MIDI files -> binary piano rolls through pretty_midi, and the train/valid/test folder reader."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pretty_midi

from gru_repro.data.errors import UnreadableFileError

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")


def check_pitch_range(pitch_low: int, pitch_high: int) -> None:
    if not (0 <= pitch_low <= pitch_high <= 127):
        raise ValueError(
            f"pitch range {pitch_low}..{pitch_high} is not valid: need "
            "0 <= pitch_low <= pitch_high <= 127 (MIDI note numbers; 88 keys = 21..108)"
        )


def midi_to_roll(
    midi: str | Path | pretty_midi.PrettyMIDI,
    frame_rate: float,
    pitch_low: int = 21,
    pitch_high: int = 108,
) -> np.ndarray:
    """Binary piano roll (T, pitch_high - pitch_low + 1) uint8; column j is MIDI pitch_low + j.

    frame_rate is in frames per second; T = ceil(end time * frame_rate) as in pretty_midi's
    `get_piano_roll` (drums excluded, sustain pedal applied). Raises UnreadableFileError
    naming the file if pretty_midi cannot parse it.
    """
    check_pitch_range(pitch_low, pitch_high)
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive (frames per second), got {frame_rate}")
    if not isinstance(midi, pretty_midi.PrettyMIDI):
        path = Path(midi)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # tempo/key meta noise
                midi = pretty_midi.PrettyMIDI(str(path))
        except Exception as err:  # mido and pretty_midi raise many types for bad files
            raise UnreadableFileError(
                f"{path}: not a readable MIDI file ({type(err).__name__}: {err}); "
                "remove or replace it, or set allow_skipping=true to skip such files"
            ) from err
    velocities = midi.get_piano_roll(fs=frame_rate)  # (128, T) float velocities
    return (velocities[pitch_low : pitch_high + 1].T > 0).astype(np.uint8)  # (T, P)


def list_midi_files(folder: Path) -> list[Path]:
    """MIDI files under `folder` (recursively), in a fixed order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES)


def read_midi_split(
    folder: Path,
    *,
    frame_rate: float,
    pitch_low: int,
    pitch_high: int,
    allow_skipping: bool = False,
) -> tuple[list[np.ndarray], list[str]]:
    """Rolls of every MIDI file under `folder`, and the files skipped (unreadable or < 2 frames).

    An unreadable file raises UnreadableFileError, or with allow_skipping=True logs a warning
    naming it and moves on.
    """
    files = list_midi_files(folder)
    if not files:
        raise UnreadableFileError(
            f"{folder} holds no .mid/.midi files; put the split's MIDI files there"
        )
    rolls, skipped = [], []
    for path in files:
        try:
            roll = midi_to_roll(path, frame_rate, pitch_low, pitch_high)
        except UnreadableFileError as err:
            if not allow_skipping:
                raise
            log.warning("skipping unreadable MIDI file %s (%s)", path, err.__cause__)
            skipped.append(str(path))
            continue
        if roll.shape[0] < 2:
            log.warning("skipping %s: %d frame(s), nothing to predict", path, roll.shape[0])
            skipped.append(str(path))
            continue
        rolls.append(roll)
    return rolls, skipped
