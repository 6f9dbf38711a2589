"""Piano-roll pictures: sampled rolls beside real test sequences (matplotlib, Agg backend)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gru_repro.atomic import atomic_path  # noqa: E402

log = logging.getLogger(__name__)


def roll_image(roll: np.ndarray) -> np.ndarray:
    """(T, P) roll -> (1, P, T) float32 image in [0, 1], high pitches on top (CHW, TensorBoard)."""
    roll = np.asarray(roll, dtype=np.float32)
    if roll.ndim != 2:
        raise ValueError(f"piano roll must be (frames, pitches), got shape {roll.shape}")
    return roll.T[::-1].copy()[None]


def _draw(axis, roll: np.ndarray, title: str, frame_rate: float, pitch_low: int) -> None:
    frames, pitches = roll.shape
    axis.imshow(
        roll.T,
        origin="lower",
        aspect="auto",
        cmap="Greys",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        extent=(0, frames / frame_rate, pitch_low - 0.5, pitch_low + pitches - 0.5),
    )
    axis.set_title(title, fontsize=9)
    axis.set_ylabel("MIDI pitch")


def plot_rolls(
    samples: Sequence[np.ndarray],
    path: str | Path,
    *,
    references: Sequence[np.ndarray] = (),
    frame_rate: float = 1.0,
    pitch_low: int = 21,
    prime_frames: int = 0,
    title: str = "",
) -> Path:
    """Save a PNG: one row per sample, its (T, P) roll left and a real test roll right.

    The x axis is in seconds at ``frame_rate``; a red line marks the end of the primer
    (``prime_frames`` frames copied from a test sequence). Written atomically.
    """
    if not samples:
        raise ValueError("plot_rolls needs at least one sampled roll")
    figure, axes = _grid(len(samples), len(references))
    for row in range(axes.shape[0]):
        if row < len(samples):
            _draw(axes[row, 0], np.asarray(samples[row]), f"sample {row}", frame_rate, pitch_low)
            if prime_frames:
                axes[row, 0].axvline(prime_frames / frame_rate, color="red", linewidth=1)
        else:
            axes[row, 0].axis("off")
        if references:
            if row < len(references):
                roll = np.asarray(references[row])
                _draw(axes[row, 1], roll, f"test sequence {row}", frame_rate, pitch_low)
            else:
                axes[row, 1].axis("off")
    return _finish(figure, axes, path, title)


def _draw_spectrogram(axis, wave: np.ndarray, title: str, sample_rate: int) -> None:
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    nfft = int(min(256, max(16, 2 ** int(np.log2(max(wave.size, 2))) // 2)))  # 32 ms at 8 kHz
    with np.errstate(divide="ignore"):  # log of exact silence is -inf: drawn as the floor
        axis.specgram(wave, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 3 // 4, cmap="magma")
    axis.set_title(title, fontsize=9)
    axis.set_ylabel("frequency (Hz)")


def plot_waveforms(
    samples: Sequence[np.ndarray],
    path: str | Path,
    *,
    references: Sequence[np.ndarray] = (),
    sample_rate: int = 8000,
    prime_samples: int = 0,
    title: str = "",
) -> Path:
    """Save a PNG of spectrograms: one row per sampled (L,) waveform, a real test one right.

    A red line marks the end of the primer (``prime_samples`` copied from a test recording).
    """
    if not samples:
        raise ValueError("plot_waveforms needs at least one sampled waveform")
    figure, axes = _grid(len(samples), len(references))
    for row in range(axes.shape[0]):
        if row < len(samples):
            _draw_spectrogram(axes[row, 0], samples[row], f"sample {row}", sample_rate)
            if prime_samples:
                axes[row, 0].axvline(prime_samples / sample_rate, color="red", linewidth=1)
        else:
            axes[row, 0].axis("off")
        if references:
            if row < len(references):
                name = f"test recording {row}"
                _draw_spectrogram(axes[row, 1], references[row], name, sample_rate)
            else:
                axes[row, 1].axis("off")
    return _finish(figure, axes, path, title)


def _grid(n_samples: int, n_references: int):
    rows = max(n_samples, n_references)
    columns = 2 if n_references else 1
    return plt.subplots(
        rows, columns, figsize=(6 * columns, 2.2 * rows + 0.6), squeeze=False, sharey=True
    )


def _finish(figure, axes, path: str | Path, title: str) -> Path:
    """Label, then save the figure as PNG atomically (temp file + rename) and close it."""
    for axis in axes[-1]:
        axis.set_xlabel("time (s)")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=80)
    finally:
        plt.close(figure)
    return path
