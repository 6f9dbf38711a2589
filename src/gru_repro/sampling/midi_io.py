"""Piano roll -> MIDI file through ``pretty_midi``.

A note is a run of consecutive active frames of one pitch: it starts at the run's first frame
and ends where the run ends, so a held chord is one long note, not a repeated one (the binary
roll cannot tell a held note from a re-struck one; this is the usual reading of these data
sets). Column ``j`` of the roll is MIDI pitch ``pitch_low + j`` (88 keys from 21 = A0).

Timing: frame ``t`` starts at ``t / frame_rate`` seconds. The tempo written into the file
(default 120 bpm) only sets how notation software draws the beats; playback time comes from
the frame rate. The file's resolution is picked so that every frame boundary falls on a whole
MIDI tick when it can.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pretty_midi

from gru_repro.atomic import atomic_path

log = logging.getLogger(__name__)

DEFAULT_TEMPO_BPM = 120.0
DEFAULT_VELOCITY = 80  # mezzo-forte: the rolls carry no dynamics
DEFAULT_PROGRAM = 0  # General MIDI acoustic grand piano


def _resolution(frame_rate: float, tempo: float) -> int:
    """Ticks per beat such that one frame is a whole number of ticks (fallback 960)."""
    frames_per_beat = Fraction(frame_rate * 60.0 / tempo).limit_denominator(1000)
    for ticks_per_beat in (480, 960, 3840):
        ticks_per_frame = Fraction(ticks_per_beat) / frames_per_beat
        if ticks_per_frame.denominator == 1:
            return ticks_per_beat
    base = frames_per_beat.numerator  # ticks_per_beat = k * numerator makes it whole
    if base <= 30000:
        return int(base * max(1, 480 // base))
    log.warning("frame rate %s at %s bpm does not fall on whole MIDI ticks", frame_rate, tempo)
    return 960


def roll_to_midi(
    roll: np.ndarray,
    *,
    frame_rate: float,
    pitch_low: int = 21,
    tempo: float = DEFAULT_TEMPO_BPM,
    velocity: int = DEFAULT_VELOCITY,
    program: int = DEFAULT_PROGRAM,
) -> pretty_midi.PrettyMIDI:
    """Turn a (T, P) binary roll (frames x pitches) into a one-instrument PrettyMIDI object."""
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise ValueError(f"piano roll must be (frames, pitches), got shape {roll.shape}")
    if frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive frames per second, got {frame_rate}")
    if pitch_low < 0 or pitch_low + roll.shape[1] > 128:
        raise ValueError(
            f"pitches {pitch_low}..{pitch_low + roll.shape[1] - 1} fall outside MIDI 0..127"
        )
    active = roll > 0.5
    midi = pretty_midi.PrettyMIDI(
        resolution=_resolution(frame_rate, tempo), initial_tempo=float(tempo)
    )
    instrument = pretty_midi.Instrument(program=program, name="sampled")
    # Pad with silence on both sides so every run has an onset (+1) and an offset (-1).
    padded = np.zeros((active.shape[0] + 2, active.shape[1]), dtype=np.int8)
    padded[1:-1] = active
    changes = np.diff(padded, axis=0)  # (T + 1, P)
    for column in range(active.shape[1]):
        starts = np.flatnonzero(changes[:, column] == 1)
        ends = np.flatnonzero(changes[:, column] == -1)
        for start, end in zip(starts, ends, strict=True):
            instrument.notes.append(
                pretty_midi.Note(
                    velocity=velocity,
                    pitch=pitch_low + column,
                    start=start / frame_rate,
                    end=end / frame_rate,
                )
            )
    instrument.notes.sort(key=lambda note: (note.start, note.pitch))
    midi.instruments.append(instrument)
    return midi


def write_midi(
    roll: np.ndarray,
    path: str | Path,
    *,
    frame_rate: float,
    pitch_low: int = 21,
    tempo: float = DEFAULT_TEMPO_BPM,
) -> Path:
    """Write a (T, P) binary roll as a .mid file, atomically (temp file + rename)."""
    path = Path(path)
    midi = roll_to_midi(roll, frame_rate=frame_rate, pitch_low=pitch_low, tempo=tempo)
    with atomic_path(path) as tmp:
        midi.write(str(tmp))
    log.info("wrote %s (%d notes)", path, len(midi.instruments[0].notes))
    return path
