"""Output heads: hidden states -> distribution parameters, per-step NLL, and sampling.

Every head has the same three methods, so the sequence model, training loop and sampler never
look inside one::

    forward(hidden (T, B, H)) -> params (T, B, ...)
    nll(params, targets (T, B, D)) -> (T, B) negative log-likelihood in nats
    sample(params of one step, generator) -> (B, D)

Heads are chosen by name through :data:`HEADS` (the speech head lives in mixture_head.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gru_repro.models.mixture_head import GaussianMixtureHead


class BernoulliHead(nn.Module):
    """One independent Bernoulli per output unit (a note), in logit form.

    ``linear`` maps (T, B, H) to logits (T, B, D); ``nll`` is the binary cross-entropy with
    logits summed over the D notes, which is the paper's per-frame negative log-likelihood
    (nats), computed stably without forming sigmoid(logits).
    """

    def __init__(self, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.linear = nn.Linear(hidden_size, output_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear(hidden)  # (T, B, D) logits

    def nll(self, logits: Tensor, targets: Tensor) -> Tensor:
        """(T, B, D) logits and {0, 1} targets -> (T, B) NLL in nats."""
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)

    def sample(self, logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, D) logits of one step -> (B, D) Bernoulli draws (0./1., logits' dtype)."""
        return torch.bernoulli(torch.sigmoid(logits), generator=generator)


HEADS: dict[str, type[nn.Module]] = {"bernoulli": BernoulliHead, "gmm": GaussianMixtureHead}


def get_head_class(name: str) -> type[nn.Module]:
    """The head class registered under ``name``."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}: choose one of {', '.join(HEADS)}")
    return HEADS[name]
