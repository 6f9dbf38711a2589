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
(hop H), as in the paper.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


def is_speech(data_info: Mapping[str, Any]) -> bool:
    """True for the raw-speech task (its data facts carry a sample rate), False for music."""
    for key in ("kind", "task"):
        if data_info.get(key) in ("speech", "music"):
            return data_info[key] == "speech"
    return "sample_rate" in data_info


def _first_key(info: Mapping[str, Any], keys: Sequence[str], default: Any = None) -> Any:
    for key in keys:
        if key in info and info[key] is not None:
            return info[key]
    if default is not None:
        return default
    raise KeyError(
        f"data_info has none of the keys {list(keys)} (it has {sorted(info)}); "
        "re-train or re-save the checkpoint with the data facts of the speech loader"
    )


@dataclass(frozen=True)
class SpeechFraming:
    """How the speech task cuts a waveform into steps, and how it was normalised.

    sample_rate in Hz; frame_size samples seen per step; hop samples predicted per step
    (= how far the window moves); ``normalised = (raw - mean) / std`` with raw in [-1, 1].
    """

    sample_rate: int
    frame_size: int = 20
    hop: int = 10
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> SpeechFraming:
        """Read the framing from the speech loader's data facts (flat, or nested groups)."""
        flat = dict(info)
        for group in ("framing", "normalisation", "normalization"):
            if isinstance(info.get(group), Mapping):
                flat.update(info[group])
        hop = int(_first_key(flat, ["hop"], 10))
        target = int(_first_key(flat, ["target_window", "target_size", "frame_out"], hop))
        if target != hop:
            raise ValueError(
                f"sampling feeds each step's {target} predicted samples back, which needs "
                f"hop == target_window, but data_info has hop {hop}; sample a model trained "
                "with hop equal to the target window"
            )
        return cls(
            sample_rate=int(_first_key(flat, ["sample_rate", "sr"])),
            frame_size=int(_first_key(flat, ["input_window", "frame_size", "frame_in"], 20)),
            hop=hop,
            mean=float(_first_key(flat, ["mean", "norm_mean"], 0.0)),
            std=float(_first_key(flat, ["std", "norm_std"], 1.0)),
        )

    def normalise(self, raw: Tensor) -> Tensor:
        return (raw - self.mean) / self.std

    def denormalise(self, normalised: Tensor) -> Tensor:
        return normalised * self.std + self.mean


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
    framing: SpeechFraming,
    *,
    n: int,
    length: int,
    generator: torch.Generator,
    primer: Tensor | None = None,
) -> Tensor:
    """Sample ``n`` waveforms of at least ``length`` new samples (rounded up to whole hops).

    Each step sees the last ``framing.frame_size`` samples (normalised) and samples the next
    ``framing.hop`` from the mixture head. primer: (L,) raw waveform run through the model
    first (its leading samples are dropped so the windows end exactly at its last sample);
    without a primer the first window is silence. Returns (n, L_p + steps * hop) raw waveform
    (normalisation undone, not clipped), primer included.
    """
    if n < 1 or length < 1:
        raise ValueError(f"n={n} and length={length} must both be at least 1")
    head = _head(model)
    device = model_device(model)
    size, hop = framing.frame_size, framing.hop
    if primer is not None:
        if primer.dim() != 1 or primer.numel() < size:
            raise ValueError(
                f"speech primer must be a 1-D waveform of at least {size} samples, "
                f"got shape {tuple(primer.shape)}"
            )
        keep = size + (primer.numel() - size) // hop * hop
        history = framing.normalise(primer[-keep:].to(device).float()).expand(n, -1)  # (n, L_p)
        # Windows ending at size, size + hop, ..., L_p: (T_p, n, size)
        inputs = history.unfold(1, size, hop).permute(1, 0, 2).contiguous()
    else:
        silence = torch.zeros(n, size, device=device)
        history = framing.normalise(silence)  # (n, size) in normalised units
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
                    f"hops {hop} samples; data_info and model disagree"
                )
            chunks.append(new)
            window = torch.cat([window, new], 1)[:, -size:]  # (n, size)
            params, state = model(window.unsqueeze(0), state)
    finally:
        model.train(was_training)
    normalised = torch.cat(chunks, 1)
    if primer is None:
        normalised = normalised[:, size:]  # drop the silent seed window
    return framing.denormalise(normalised).cpu()
