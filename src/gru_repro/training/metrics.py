"""Negative log-likelihood per time step in nats, under three stated averaging conventions.

For a split of N sequences, sequence n with ``L_n`` predicted steps (music: frames 2..T_n are
predicted from frames 1..T_n-1, so ``L_n = T_n - 1``) and per-step NLL ``l_{n,t}`` (summed over
the output dimensions, e.g. the 88 notes):

- ``frame`` (the headline number, the convention of later work such as Bai et al. 2018):
  ``sum_{n,t} l_{n,t} / sum_n L_n`` -- frame-weighted over predicted frames.
- ``seqavg``: ``mean_n (sum_t l_{n,t} / L_n)`` -- per sequence, then over sequences.
- ``allframes``: ``sum_{n,t} l_{n,t} / sum_n (L_n + 1)`` -- divided by all frames of the split
  including each sequence's first, unpredicted frame (for speech: one more step per sequence).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gru_repro.training.weight_noise import noisy_weights

NLL_CONVENTION = "nats per predicted step, frame-weighted over frames 2..T (sum over outputs)"


@dataclass
class NLLTotals:
    """Running sums from which the three conventions are computed."""

    total: float = 0.0  # sum of per-step NLL, nats
    steps: int = 0  # predicted steps
    sequences: int = 0
    seq_mean_sum: float = 0.0  # sum over sequences of their mean per-step NLL

    def add(self, step_nll: Tensor, lengths: Tensor) -> None:
        """Add one batch: ``step_nll`` (T, B) nats, 0 where padded; ``lengths`` (B,) steps."""
        self.add_sequences(step_nll.detach().double().sum(dim=0).tolist(), lengths.tolist())

    def add_sequences(self, per_sequence: list[float], lengths: list[int]) -> None:
        """Add one batch from its sequences' summed NLLs (nats, float64) and predicted steps,
        summed in order in Python: a handful of tensor ops per batch instead of one per sum
        (a population adds P members' batches every update, :func:`add_members`)."""
        batch_total = seq_means = 0.0
        for nll, length in zip(per_sequence, lengths, strict=True):
            batch_total += nll
            seq_means += nll / max(length, 1)
        self.total += batch_total
        self.steps += sum(lengths)
        self.sequences += len(lengths)
        self.seq_mean_sum += seq_means

    @property
    def frame(self) -> float:
        return self.total / self.steps if self.steps else math.nan

    @property
    def seqavg(self) -> float:
        return self.seq_mean_sum / self.sequences if self.sequences else math.nan

    @property
    def allframes(self) -> float:
        frames = self.steps + self.sequences
        return self.total / frames if frames else math.nan

    def as_dict(self, prefix: str) -> dict[str, float]:
        """``{prefix}_nll``, ``{prefix}_nll_seqavg``, ``{prefix}_nll_allframes``."""
        return {
            f"{prefix}_nll": self.frame,
            f"{prefix}_nll_seqavg": self.seqavg,
            f"{prefix}_nll_allframes": self.allframes,
        }


def add_members(totals: Sequence[NLLTotals], step_nll: Tensor, lengths: Tensor) -> None:
    """``totals[k].add(step_nll[k], lengths)`` for every member k of a population's
    ``step_nll`` (P, T, B), in one reduction: (P, T, B).sum(1) gives each row the bits of
    (T, B).sum(0), so every member's totals are its single run's."""
    per_sequence = step_nll.detach().double().sum(dim=1).tolist()  # (P, B)
    steps = lengths.tolist()
    for member, row in zip(totals, per_sequence, strict=True):
        member.add_sequences(row, steps)


def batch_loss(step_nll: Tensor, mask: Tensor, objective: str = "mean") -> Tensor:
    """Training loss of one update (nats), ``trainer.objective``:

    - ``mean``: per-step NLL averaged over the batch's predicted steps (frame-weighted within
      the batch, matching the headline metric);
    - ``sum``: the NLL summed over the batch's predicted steps and their outputs, the released
      code's objective (``mask.sum()`` times the mean, so its gradient is that many times the
      mean's: 250-470x on the music sets at one sequence per update).
    """
    if objective == "sum":
        return step_nll.sum()
    if objective != "mean":
        raise ValueError(f"trainer.objective must be one of mean, sum, got {objective!r}")
    return step_nll.sum() / mask.sum().clamp(min=1)


@torch.no_grad()
def evaluate(
    model, batches, *, draw_noise: Callable[[], dict[str, Tensor]] | None = None
) -> NLLTotals:
    """NLL totals of ``model`` over ``batches`` (each sequence whole from a zero state).

    ``draw_noise()``, when given, is called once per batch for a weight-noise draw
    (``WeightNoise.draw``) that the batch is evaluated at (as the released code evaluated).
    """
    was_training = model.training
    model.eval()
    totals = NLLTotals()
    try:
        for batch in batches:
            with noisy_weights(model, draw_noise() if draw_noise else {}):
                totals.add(model.step_nll(batch), batch.lengths)
    finally:
        model.train(was_training)
    return totals
