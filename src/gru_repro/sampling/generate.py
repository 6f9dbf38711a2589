"""Draw sequences from a trained model, one step at a time, feeding each sample back.

Both tasks run the same loop: run the (optional) primer through the recurrent model, then
repeat "sample one step from the head, turn it into the next input, advance the state".
The recurrent state carries the whole history, so each step runs the model on one input
frame only (``SequenceModel`` guarantees that stepping with the returned state equals the
whole-sequence run).

Layouts::

    music   input frame (1, B, P) binary notes  ->  head params  ->  sample (B, P)
    speech  input window (1, B, F) last F samples (normalised) -> sample (B, H) next H samples

with P notes (88 keys), F = 20 samples seen per step and H = 10 samples predicted per step
(hop H), as in the paper: the data's `Framing` and `Normalisation` (``DataFacts``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from gru_repro.data.speech_framing import Framing, Normalisation

log = logging.getLogger(__name__)


def _last_step(params: Any) -> Any:
    """Params of the last time step: (T, B, P) -> (B, P), also inside tuples and dicts."""
    if isinstance(params, Tensor):
        return params[-1]
    if isinstance(params, Mapping):
        return {key: _last_step(value) for key, value in params.items()}
    if isinstance(params, (tuple, list)):
        return type(params)(_last_step(value) for value in params)
    raise TypeError(f"cannot take the last step of head params of type {type(params).__name__}")


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (samples are drawn there, returned on the CPU)."""
    return next(model.parameters(), torch.empty(0)).device


def _head(model: nn.Module) -> nn.Module:
    if not hasattr(model, "head") or not hasattr(model.head, "sample"):
        raise TypeError(
            f"{type(model).__name__} has no .head.sample(params, generator); "
            "build the model with gru_repro.models.build_model"
        )
    return model.head


@torch.no_grad()
def sample_music(
    model: nn.Module,
    *,
    n: int,
    length: int,
    generator: torch.Generator,
    primer: Tensor | None = None,
) -> Tensor:
    """Sample ``n`` piano rolls of ``length`` new frames, each frame fed back as the next input.

    primer: (T_p, P) binary roll (e.g. the start of a test sequence), run through the model
    before sampling; it starts every one of the ``n`` samples. Without a primer the first input
    is a silent frame. Returns (T_p + length, n, P) float32 in {0, 1}, primer frames included.
    """
    if n < 1 or length < 1:
        raise ValueError(f"n={n} and length={length} must both be at least 1")
    head = _head(model)
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        n_notes = int(model.rnn.input_size)
        if primer is not None:
            if primer.dim() != 2 or primer.shape[0] < 1 or primer.shape[1] != n_notes:
                raise ValueError(
                    f"primer must be a (T, {n_notes}) roll with T >= 1 (the model's notes), "
                    f"got shape {tuple(primer.shape)}"
                )
            inputs = primer.to(device).float().unsqueeze(1).expand(-1, n, -1)  # (T_p, n, P)
            frames = list(inputs.unbind(0))
        else:
            inputs = torch.zeros(1, n, n_notes, device=device)  # (1, n, P): a silent frame
            frames = []
        params, state = model(inputs, None)
        for _ in range(length):
            frame = head.sample(_last_step(params), generator).float()  # (n, P)
            frames.append(frame)
            params, state = model(frame.unsqueeze(0), state)
    finally:
        model.train(was_training)
    return torch.stack(frames, 0).cpu()  # (T_p + length, n, P)


@torch.no_grad()
def sample_speech(
    model: nn.Module,
    framing: Framing,
    normalisation: Normalisation,
    *,
    n: int,
    length: int,
    generator: torch.Generator,
    primer: Tensor | None = None,
) -> Tensor:
    """Sample ``n`` waveforms of at least ``length`` new samples (rounded up to whole hops).

    Each step sees the last ``framing.input_window`` samples (normalised) and samples the next
    ``framing.hop`` from the mixture head; feeding them back needs hop == target_window.
    primer: (L,) raw waveform run through the model first (its leading samples are dropped so
    the windows end exactly at its last sample); without a primer the first window is
    silence. Returns (n, L_p + steps * hop) raw waveform (normalisation undone, not clipped),
    primer included.
    """
    if n < 1 or length < 1:
        raise ValueError(f"n={n} and length={length} must both be at least 1")
    size, hop = framing.input_window, framing.hop
    if framing.target_window != hop:
        raise ValueError(
            f"sampling feeds each step's {framing.target_window} predicted samples back, which "
            f"needs hop == target_window, but the data's hop is {hop}; sample a model trained "
            "with hop equal to the target window"
        )
    mean, std = normalisation.mean, normalisation.std
    head = _head(model)
    device = model_device(model)
    if primer is not None:
        if primer.dim() != 1 or primer.numel() < size:
            raise ValueError(
                f"speech primer must be a 1-D waveform of at least {size} samples, "
                f"got shape {tuple(primer.shape)}"
            )
        keep = size + (primer.numel() - size) // hop * hop
        history = ((primer[-keep:].to(device).float() - mean) / std).expand(n, -1)  # (n, L_p)
        # Windows ending at size, size + hop, ..., L_p: (T_p, n, size)
        inputs = history.unfold(1, size, hop).permute(1, 0, 2).contiguous()
    else:
        history = (torch.zeros(n, size, device=device) - mean) / std  # (n, size) silence
        inputs = history.unsqueeze(0)  # (1, n, size)
    steps = -(-length // hop)
    was_training = model.training
    model.eval()
    chunks = [history]
    try:
        params, state = model(inputs, None)
        window = history[:, -size:]
        for _ in range(steps):
            new = head.sample(_last_step(params), generator).float()  # (n, H)
            if new.shape != (n, hop):
                raise ValueError(
                    f"the head samples {tuple(new.shape[1:])} values per step but the framing "
                    f"hops {hop} samples; the data facts and the model disagree"
                )
            chunks.append(new)
            window = torch.cat([window, new], 1)[:, -size:]  # (n, size)
            params, state = model(window.unsqueeze(0), state)
    finally:
        model.train(was_training)
    normalised = torch.cat(chunks, 1)
    if primer is None:
        normalised = normalised[:, size:]  # drop the silent seed window
    return (normalised * std + mean).cpu()
