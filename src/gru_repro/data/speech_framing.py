"""From waveforms to training sequences: segments, steps, normalisation.

Units: everything here counts **samples** of the (resampled, mono) waveform.

A waveform x of N samples becomes steps t = 0 .. n_steps - 1 with::

    inputs[t]  = x[t*hop : t*hop + input_window]                                  (20 samples)
    targets[t] = x[t*hop + input_window : t*hop + input_window + target_window]   (next 10)
    n_steps    = (N - input_window - target_window) // hop + 1

so with the paper's 20 / 10 / 10, a sequence of 500 samples has 48 steps and one of 8,000 has
798; with hop == target_window every sample after the first 20 is predicted exactly once, and a
trailing remainder shorter than one hop is not predicted. N < input_window + target_window
(30 samples) gives no step at all: "shorter than one frame".

Long waveforms are first cut into segments of `sequence_length` samples, one every
`segment_stride` samples (a waveform no longer than `sequence_length` is one segment of its own
length). `full_coverage_stride` is the stride at which consecutive segments predict adjacent
samples with no gap and no overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Framing:
    """Step geometry, in samples: `input_window` seen, the next `target_window` predicted."""

    input_window: int = 20
    target_window: int = 10
    hop: int = 10

    def __post_init__(self) -> None:
        for name in ("input_window", "target_window", "hop"):
            if getattr(self, name) < 1:
                raise ValueError(f"framing {name} must be >= 1 sample, got {getattr(self, name)}")

    @property
    def frame_samples(self) -> int:
        """Samples needed for one step (input plus target): the shortest usable waveform."""
        return self.input_window + self.target_window

    def n_steps(self, n_samples: int) -> int:
        """Steps a waveform of `n_samples` samples gives (0 if shorter than one frame)."""
        if n_samples < self.frame_samples:
            return 0
        return (n_samples - self.frame_samples) // self.hop + 1

    def full_coverage_stride(self, sequence_length: int) -> int:
        """Segment stride (samples) at which segments' targets tile the waveform.

        Exact when hop == target_window (the paper's setting).
        """
        steps = self.n_steps(sequence_length)
        if steps < 1:
            raise ValueError(
                f"sequence_length {sequence_length} is shorter than one frame "
                f"({self.frame_samples} samples)"
            )
        return steps * self.hop


def frame_waveform(
    wave: torch.Tensor | np.ndarray, framing: Framing
) -> tuple[torch.Tensor, torch.Tensor]:
    """One waveform (N,) -> inputs (n_steps, input_window), targets (n_steps, target_window).

    float32, contiguous copies. Raises ValueError if N is shorter than one frame.
    """
    x = torch.as_tensor(np.asarray(wave), dtype=torch.float32)
    if x.dim() != 1:
        raise ValueError(f"expected a mono waveform of shape (N,), got {tuple(x.shape)}")
    steps = framing.n_steps(x.numel())
    if steps < 1:
        raise ValueError(
            f"waveform of {x.numel()} samples is shorter than one frame "
            f"({framing.frame_samples} samples = input {framing.input_window} + "
            f"target {framing.target_window})"
        )
    inputs = x.unfold(0, framing.input_window, framing.hop)[:steps]  # (steps, I)
    targets = x[framing.input_window :].unfold(0, framing.target_window, framing.hop)[:steps]
    return inputs.contiguous(), targets.contiguous()


def segment_bounds(n_samples: int, sequence_length: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) of the segments cut from a waveform of `n_samples` samples.

    Segments are `sequence_length` long, one every `stride` samples from sample 0; a remainder
    shorter than a segment is dropped. A waveform no longer than `sequence_length` is one
    segment of its own length.
    """
    if sequence_length < 1 or stride < 1:
        raise ValueError(
            f"sequence_length and segment_stride must be >= 1 sample, got "
            f"{sequence_length} and {stride}"
        )
    if n_samples <= sequence_length:
        return [(0, n_samples)]
    starts = range(0, n_samples - sequence_length + 1, stride)
    return [(s, s + sequence_length) for s in starts]


@dataclass(frozen=True)
class Normalisation:
    """Affine map applied to every waveform sample: (x - mean) / std, with x the raw float
    waveform in [-1, 1] and the statistics from the training split only."""

    mean: float
    std: float

    @classmethod
    def fit(cls, waves: Sequence[np.ndarray]) -> Normalisation:
        """Mean and std over all samples of `waves` (float64 accumulation)."""
        total = sum(int(w.size) for w in waves)
        if total == 0:
            raise ValueError("cannot fit normalisation statistics on no samples")
        mean = sum(float(np.sum(w, dtype=np.float64)) for w in waves) / total
        var = sum(float(np.sum((w.astype(np.float64) - mean) ** 2)) for w in waves) / total
        std = float(np.sqrt(var))
        if not std > 0:
            raise ValueError(
                "training waveforms are constant (std 0): cannot normalise; check the audio"
            )
        return cls(mean=mean, std=std)

    def apply(self, wave: np.ndarray) -> np.ndarray:
        return ((wave.astype(np.float64) - self.mean) / self.std).astype(np.float32)
