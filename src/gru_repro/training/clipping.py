"""Gradient-norm rescaling as the paper does it: "the gradient norm is rescaled to 1 if larger".

Hand-written instead of ``torch.nn.utils.clip_grad_norm_`` because the paper's rule must hold
for gradients beyond float32's range, which happen for real: at initialisation the tanh RNN
under weight noise (std 0.075 on a 400 x 400 recurrent matrix makes its spectral norm well
above 1) back-propagates gradients of norm 1e29 to 1e39 through speech B's 798 steps.

- The norm is accumulated in float64: torch's clip sums the squares in the gradients' dtype,
  so in float32 any norm above ~1.8e19 comes out inf although every entry is finite.
- :func:`clip_or_rescue` (called right after ``loss.backward(retain_graph=True)``) redoes the
  backward on a scaled-down loss when the gradient itself overflows (inf or NaN entries from a
  finite loss). The backward is linear in the loss and the rescaled gradient g / |g| does not
  depend on the loss's scale, so this computes the very update the paper's rule gives, without
  the overflow. Only a gradient still non-finite at the smallest scale counts as divergence.
- ``max_norm=None`` (``trainer.clip_grad_norm: null``, the released code) leaves the gradient
  as it is; with no rescaling an overflowing gradient has no finite update to rescue, so there
  is no rescue: the run diverges on its non-finite gradient norm.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

# Loss scales tried in turn when the gradient overflows float32 (max ~3.4e38): the last one
# covers true gradient entries up to ~1e74; smaller would push the loss (~1e1) below float32's
# smallest normal number (~1.2e-38).
OVERFLOW_SCALES = (1e-12, 1e-24, 1e-36)


def global_norm(tensors: Sequence[Tensor]) -> float:
    """The L2 norm of ``tensors`` taken together: each tensor's norm in float64, their squares
    summed in order (float64, so finite up to ~1e308; inf or NaN if any entry is)."""
    if not tensors:
        return 0.0
    squares = torch.stack(
        [torch.linalg.vector_norm(t, dtype=torch.float64).square() for t in tensors]
    )
    return float(squares.sum().sqrt())


def clip_gradient_norm(
    parameters: Iterable[nn.Parameter], max_norm: float | None, loss_scale: float = 1.0
) -> float:
    """Scale the gradients in place so that their global L2 norm is at most ``max_norm``
    (None: leave them as they are).

    ``loss_scale``: the gradients are those of ``loss_scale`` x the loss; they are turned into
    the clipped gradient of the loss itself. Returns the loss's gradient norm before rescaling
    (float64, so finite up to ~1e308), inf or NaN if any entry is. Parameters without a gradient
    are skipped. Factor ``max_norm / (norm + 1e-6)`` when ``norm > max_norm``, as torch's
    clip_grad_norm_ does.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norm = global_norm(grads) / loss_scale
    if math.isfinite(norm):
        clip = max_norm is not None and norm > max_norm
        factor = (max_norm / (norm + 1e-6) if clip else 1.0) / loss_scale
        if factor != 1.0:
            for g in grads:
                g.mul_(factor)
    return norm


def clip_or_rescue(
    loss: Tensor, parameters: Sequence[nn.Parameter], max_norm: float | None
) -> tuple[float, int]:
    """Rescale the gradients that ``loss.backward(retain_graph=True)`` just left in the
    parameters' ``.grad`` by the paper's rule; returns (the loss's gradient norm before
    rescaling, backward passes redone).

    When that gradient overflowed float32, the backward is redone on ``loss`` x each scale in
    :data:`OVERFLOW_SCALES` in turn (``.grad`` replaced, not accumulated) until the norm is
    finite. The redone passes reuse the retained graph, so the same weight-noise draw: call
    this inside the ``noisy_weights`` block of the backward. ``max_norm=None``: no clipping
    and no rescue (see the module docstring).
    """
    parameters = list(parameters)
    norm = clip_gradient_norm(parameters, max_norm)
    retries = 0
    if max_norm is None:
        return norm, retries
    for scale in OVERFLOW_SCALES:
        if math.isfinite(norm) or not torch.isfinite(loss):
            break
        for p in parameters:
            p.grad = None
        (loss * scale).backward(retain_graph=True)
        norm = clip_gradient_norm(parameters, max_norm, loss_scale=scale)
        retries += 1
    return norm, retries
