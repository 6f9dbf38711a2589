"""A tiny synthetic music set for smoke tests: repeating chord cycles with a little noise.

Each sequence loops one of `n_patterns` chord cycles (each chord `notes_per_chord` pitches,
each cycle `cycle_length` chords) from a random phase, and each roll cell is flipped with
probability `noise`. The next frame is (almost) a function of the current one, so a recurrent
model's NLL falls well below the 0.69 nats per pitch of a coin flip within an epoch or two.
Generated in memory from `seed`; no files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gru_repro.data.midi import check_pitch_range
from gru_repro.data.splits import SPLITS, DataSplits, music_splits


def make_patterns(
    rng: np.random.Generator, n_patterns: int, cycle_length: int, notes_per_chord: int, width: int
) -> np.ndarray:
    """Chord cycles (n_patterns, cycle_length, width) uint8, all chords distinct."""
    seen: set[tuple[int, ...]] = set()
    patterns = np.zeros((n_patterns, cycle_length, width), dtype=np.uint8)
    for k in range(n_patterns):
        for c in range(cycle_length):
            while True:
                chord = tuple(sorted(rng.choice(width, size=notes_per_chord, replace=False)))
                if chord not in seen:
                    break
            seen.add(chord)
            patterns[k, c, list(chord)] = 1
    return patterns


def load_synthetic(
    *,
    data_dir: str | Path | None = None,
    mirror: str | Path | None = None,
    seed: int = 0,
    n_train: int = 64,
    n_valid: int = 16,
    n_test: int = 16,
    min_length: int = 16,
    max_length: int = 48,
    n_patterns: int = 4,
    cycle_length: int = 4,
    notes_per_chord: int = 3,
    noise: float = 0.01,
    pitch_low: int = 60,
    pitch_high: int = 83,
) -> DataSplits:
    """Deterministic from `seed`; data_dir and mirror are accepted for a uniform call and unused.

    Lengths are in frames (uniform in [min_length, max_length]); noise is a per-cell flip
    probability; the roll has pitch_high - pitch_low + 1 columns.
    """
    check_pitch_range(pitch_low, pitch_high)
    width = pitch_high - pitch_low + 1
    if not 2 <= min_length <= max_length:
        raise ValueError(f"need 2 <= min_length <= max_length, got {min_length}, {max_length}")
    if not 1 <= notes_per_chord <= width:
        raise ValueError(f"notes_per_chord must be in 1..{width}, got {notes_per_chord}")
    if n_patterns * cycle_length > 200 * width:
        raise ValueError("too many distinct chords asked for this pitch range")
    if not 0.0 <= noise < 0.5:
        raise ValueError(f"noise is a flip probability in [0, 0.5), got {noise}")
    rng = np.random.default_rng(seed)
    patterns = make_patterns(rng, n_patterns, cycle_length, notes_per_chord, width)
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    rolls: dict[str, list[np.ndarray]] = {}
    for split in SPLITS:
        rolls[split] = []
        for _ in range(sizes[split]):
            k = rng.integers(n_patterns)
            length = int(rng.integers(min_length, max_length + 1))
            steps = (rng.integers(cycle_length) + np.arange(length)) % cycle_length
            roll = patterns[k, steps]  # (T, width)
            flips = rng.random(roll.shape) < noise
            rolls[split].append((roll ^ flips).astype(np.uint8))
    info = {
        "source": "generated",
        "seed": seed,
        "noise": noise,
        "pitch_low": pitch_low,
        "pitch_high": pitch_high,
        "frame_rate": None,
    }
    return music_splits("synthetic", rolls, info)
