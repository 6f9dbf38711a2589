"""The paper's gradient-norm rescaling for a population: each member's norm is its own.

Member k's gradient is row k of every stacked parameter's ``.grad``. The single run
(``training/clipping.py``) computes ``sqrt(sum_t ||g_t||^2)`` with each tensor's norm from
``torch.linalg.vector_norm(dtype=float64)`` and the sum over the T tensors in order. Here the
per-tensor norms of all members come from one ``vector_norm(dim=1)`` per tensor (the same
reduction over each member's contiguous row: bit-identical,
tests/training/test_population_clipping.py), and the squares are summed along contiguous (P, T)
rows, which sums each member's T values in the single run's order (a sum down a strided column
does not: it rounds differently).

The overflow rescue (a member whose gradient has inf/NaN entries from a finite loss) redoes the
backward of ``sum_k s_k * loss_k`` with ``s_k`` the next scale of ``OVERFLOW_SCALES`` for the
members being rescued; only those members' rows are taken from it, every other member keeps
the gradient of the first backward, so it is exactly what it would be without the rescue.
Without clipping (``max_norm=None``) there is no rescue, as in the single run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from gru_repro.training.clipping import OVERFLOW_SCALES


def member_gradient_norms(grads: Sequence[Tensor]) -> list[float]:
    """Each member's global L2 norm over ``grads`` (tensors of shape (P, ...)), float64."""
    members = grads[0].shape[0]
    per_tensor = torch.stack(
        [
            torch.linalg.vector_norm(g.reshape(members, -1), dim=1, dtype=torch.float64)
            for g in grads
        ],
        dim=1,
    )  # (P, T): row k is member k's tensor norms, contiguous
    return per_tensor.square().sum(dim=1).sqrt().tolist()


def clip_member_gradient_norms(
    parameters: Iterable[Tensor], max_norm: float | None, loss_scales: float | Sequence[float] = 1.0
) -> list[float]:
    """Scale each member's gradient rows in place so that its norm is at most ``max_norm``.

    ``loss_scales``: one per member (or one for all): member k's gradient is that of
    ``loss_scales[k]`` x its loss and becomes the clipped gradient of the loss itself, as
    ``clip_gradient_norm(loss_scale=...)`` does. Returns each member's loss-gradient norm before
    rescaling (inf or NaN where an entry is; such a member is left unscaled).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return []
    members = grads[0].shape[0]
    scales = (
        [float(loss_scales)] * members
        if isinstance(loss_scales, float | int)
        else list(loss_scales)
    )
    if len(scales) != members:
        raise ValueError(f"{len(scales)} loss scales for a population of {members}")
    norms = [n / s for n, s in zip(member_gradient_norms(grads), scales, strict=True)]
    factors = [
        ((max_norm / (n + 1e-6) if max_norm is not None and n > max_norm else 1.0) / s)
        if math.isfinite(n)
        else 1.0
        for n, s in zip(norms, scales, strict=True)
    ]
    if any(f != 1.0 for f in factors):
        for g in grads:
            # the single run's g.mul_(python float) converts the factor to g's dtype: so here
            view = (members,) + (1,) * (g.dim() - 1)
            g.mul_(torch.tensor(factors, dtype=g.dtype, device=g.device).view(view))
    return norms


def backward_and_clip_members(
    member_losses: Tensor, parameters: Sequence[Tensor], max_norm: float | None
) -> tuple[list[float], list[int]]:
    """Backward of ``member_losses.sum()`` ((P,) losses, member k's depending only on row k of
    the stacked parameters) into ``.grad`` (set, not accumulated), rescaled per member by the
    paper's rule; returns (each member's gradient norm before rescaling, backward passes redone
    for it), as ``loss.backward(retain_graph=True)`` then ``training.clipping.clip_or_rescue``
    do for one run.

    A member whose loss is not finite is not rescued (the caller ends it as diverged); its
    gradient rows are whatever the backward gave and do not touch the other members'.
    """
    parameters = list(parameters)
    for p in parameters:
        p.grad = None
    member_losses.sum().backward(retain_graph=True)
    norms = clip_member_gradient_norms(parameters, max_norm)
    retries = [0] * len(norms)
    if max_norm is None:
        return norms, retries
    finite_loss = torch.isfinite(member_losses.detach()).tolist()
    for scale in OVERFLOW_SCALES:
        rescued = [k for k, n in enumerate(norms) if not math.isfinite(n) and finite_loss[k]]
        if not rescued:
            break
        kept = [p.grad for p in parameters]
        for p in parameters:
            p.grad = None
        loss_scales = [1.0] * len(norms)
        for k in rescued:
            loss_scales[k] = scale
        # the single run's (loss * scale).backward() seeds its loss with scale in the loss's
        # dtype; a tensor of scales does the same per member
        seeds = torch.tensor(loss_scales, dtype=member_losses.dtype, device=member_losses.device)
        (member_losses * seeds).sum().backward(retain_graph=True)
        redone = clip_member_gradient_norms(parameters, max_norm, loss_scales)
        for k in rescued:
            norms[k] = redone[k]
            retries[k] += 1
        for p, old in zip(parameters, kept, strict=True):
            if old is not None and p.grad is not None:
                old[rescued] = p.grad[rescued]  # the rescued rows; the others stay bit for bit
                p.grad = old
    return norms, retries
