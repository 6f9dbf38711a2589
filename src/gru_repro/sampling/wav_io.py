"""Waveform -> 16-bit PCM WAV through ``soundfile`` (``data.audio.read_audio`` reads WAVs).

Waveforms are float in [-1, 1] (soundfile's convention, and the raw scale the speech loader
normalises from). Sampled speech can overshoot that range; it is clipped before writing,
with a log line saying how much was clipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile

from gru_repro.atomic import atomic_path

log = logging.getLogger(__name__)

SUBTYPE = "PCM_16"
QUANTISATION_STEP = 1.0 / 32768  # one 16-bit level, in [-1, 1] units


def write_wav(waveform: np.ndarray, path: str | Path, *, sample_rate: int) -> Path:
    """Write a mono (L,) waveform in [-1, 1] as 16-bit PCM WAV, atomically; clips overshoot."""
    samples = np.asarray(waveform, dtype=np.float64)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"waveform must be a non-empty mono (L,) array, got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"waveform for {path} holds NaN or infinite samples; nothing written")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive Hz, got {sample_rate}")
    clipped = np.clip(samples, -1.0, 1.0)
    n_clipped = int(np.count_nonzero(clipped != samples))
    if n_clipped:
        log.info("%s: clipped %d of %d samples to [-1, 1]", path, n_clipped, samples.size)
    path = Path(path)
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), clipped, int(sample_rate), subtype=SUBTYPE, format="WAV")
    return path
