"""A few samples in TensorBoard during training: piano-roll images (music), audio (speech).

The training loop calls ``log_samples`` every ``trainer.sample_every`` epochs (off by default
in sweeps). Samples use a fixed seed, so the pictures and sounds of successive epochs differ
only because the model changed.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from gru_repro.data.splits import DataFacts, DataKind
from gru_repro.sampling.generate import model_device, sample_music, sample_speech
from gru_repro.sampling.plots import roll_image

log = logging.getLogger(__name__)

DEFAULT_MUSIC_FRAMES = 128  # a few bars at the data sets' usual 1-4 frames per beat
DEFAULT_SPEECH_SECONDS = 1.0  # about one spoken digit of FSDD


def stack_rolls(rolls: np.ndarray) -> np.ndarray:
    """(T, n, P) rolls -> one (1, n * (P + 1) - 1, T) image, rolls one above the other.

    A grey line separates the rolls; high pitches are on top inside each roll.
    """
    images = [roll_image(rolls[:, i]) for i in range(rolls.shape[1])]
    separator = np.full((1, 1, rolls.shape[0]), 0.5, dtype=np.float32)
    parts: list[np.ndarray] = []
    for image in images:
        if parts:
            parts.append(separator)
        parts.append(image)
    return np.concatenate(parts, axis=1)


def log_samples(
    writer: Any,
    model: nn.Module,
    facts: DataFacts,
    step: int,
    n: int = 2,
    length: int | None = None,
    *,
    seed: int = 0,
) -> None:
    """Sample ``n`` sequences and add them to a ``SummaryWriter`` at global step ``step``.

    Music: one image ``samples/piano_roll`` (``length`` frames, default 128). Speech: audio
    ``samples/audio_{i}`` (``length`` samples, default one second) at the data's sample rate,
    normalisation undone and clipped to [-1, 1].
    """
    generator = torch.Generator(device=model_device(model)).manual_seed(seed)
    if facts.kind is DataKind.SPEECH:
        rate = int(facts.info["sample_rate"])  # Hz
        length = length or int(DEFAULT_SPEECH_SECONDS * rate)
        waves = sample_speech(
            model, facts.framing, facts.normalisation, n=n, length=length, generator=generator
        )
        for i, wave in enumerate(waves.clamp(-1.0, 1.0)):
            writer.add_audio(f"samples/audio_{i}", wave.unsqueeze(0), step, sample_rate=rate)
    else:
        length = length or DEFAULT_MUSIC_FRAMES
        rolls = sample_music(model, n=n, length=length, generator=generator)  # (T, n, P)
        writer.add_image("samples/piano_roll", stack_rolls(rolls.numpy()), step, dataformats="CHW")
    log.debug("logged %d samples of length %d at step %d", n, length, step)
