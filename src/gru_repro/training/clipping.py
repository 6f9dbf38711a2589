"""Gradient-norm rescaling as the paper does it: "the gradient norm is rescaled to 1 if larger".

Hand-written instead of ``torch.nn.utils.clip_grad_norm_`` because that one sums the squares
in the gradients' dtype: in float32 a norm above ~1.8e19 overflows to inf. That happens for real
at initialisation: the tanh RNN under weight noise (std 0.075 on a 400 x 400 recurrent matrix
gives a noisy matrix of spectral norm above 1) back-propagates gradients of order 1e27
through speech B's 798 steps. The rescaled gradient is well defined (every entry is finite), so
the paper's rule applies; only a non-finite entry (inf or NaN) makes the norm non-finite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


def clip_gradient_norm(parameters: Iterable[nn.Parameter], max_norm: float) -> float:
    """Scale the gradients in place so that their global L2 norm is at most ``max_norm``.

    Returns the norm before rescaling, accumulated in float64 (finite up to ~1e308 whatever
    the gradients' dtype); inf or NaN if any gradient entry is. Parameters without a gradient
    are skipped. Rescaling factor ``max_norm / (norm + 1e-6)`` when ``norm > max_norm``, as in
    torch's clip_grad_norm_.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    squares = torch.stack(
        [torch.linalg.vector_norm(g, dtype=torch.float64).square() for g in grads]
    )
    norm = float(squares.sum().sqrt())
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads:
            g.mul_(scale)
    return norm
