"""Per-member gradient rescaling and overflow rescue: every member bit for bit what
training/clipping.py does for the single run with that member's gradient."""

from __future__ import annotations

import math

import pytest
import torch
from exploding import Amplify
from torch import nn

from gru_repro.training.clipping import clip_gradient_norm, clip_or_rescue
from gru_repro.training.population import backward_and_clip_members, clip_member_gradient_norms

SHAPES = [(138, 88), (138, 46), (138,), (88, 46), (88,)]  # Nottingham GRU


def _stacked_grads(dtype, scales, bad_member=None):
    """Stacked gradients, member k's entries ~ scales[k]; member ``bad_member`` has an inf."""
    gen = torch.Generator().manual_seed(3)
    grads = []
    for shape in SHAPES:
        g = torch.randn(len(scales), *shape, generator=gen, dtype=dtype)
        grads.append(g * torch.tensor(scales, dtype=dtype).view(-1, *[1] * len(shape)))
    if bad_member is not None:
        grads[1][bad_member, 5, 7] = math.inf
    return grads


def _with_grads(grads):
    params = []
    for g in grads:
        p = nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        params.append(p)
    return params


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss_scale", [1.0, 1e-12])
def test_each_members_norm_and_rescaling_is_the_single_runs(dtype, loss_scale) -> None:
    """Members below, just below, above and far above max_norm, and one with an inf entry
    (the gradients are those of loss_scale x the loss, as in a rescue)."""
    scales = [1e-3, 0.006, 1.0, 1e3, 1.0]  # member norms ~ 150 x scale
    grads = _stacked_grads(dtype, [s * loss_scale for s in scales], bad_member=4)
    population = _with_grads(grads)
    norms = clip_member_gradient_norms(population, 1.0, loss_scales=[loss_scale] * len(scales))
    for k in range(len(scales)):
        single = _with_grads([g[k] for g in grads])
        expected = clip_gradient_norm(single, 1.0, loss_scale=loss_scale)
        assert norms[k] == expected or (math.isnan(norms[k]) and math.isnan(expected))
        for p, q in zip(population, single, strict=True):
            assert torch.equal(p.grad[k], q.grad), f"member {k}"
    assert norms[0] < 0.5 < norms[1] < 1.0 < norms[2] < norms[3] and not math.isfinite(norms[4])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_norm_sums_each_members_tensor_norms_in_the_single_runs_order(dtype) -> None:
    """64 members, each tensor at its own random magnitude: a sum of the squares in another
    order (e.g. down a strided column) rounds differently for about a quarter of them."""
    gen = torch.Generator().manual_seed(9)
    members = 64
    grads = [
        torch.randn(members, *shape, generator=gen, dtype=dtype)
        * (10.0 ** (3 * torch.randn(members, generator=gen))).to(dtype).view(-1, *[1] * len(shape))
        for shape in [(13, 7), (5,), (9, 9), (3,), (11,)]
    ]
    norms = clip_member_gradient_norms(_with_grads(grads), max_norm=math.inf)
    for k in range(members):
        assert norms[k] == clip_gradient_norm(_with_grads([g[k] for g in grads]), math.inf)


def _population_losses(w, amplify, directions, offsets):
    """Member k's loss (amplify[k] on its gradient path); each row independent of the others."""
    out = w
    for factors in amplify:
        out = AmplifyRows.apply(out, factors)
    return (out * directions).sum(dim=1) + offsets


class AmplifyRows(torch.autograd.Function):
    """``exploding.Amplify`` with one factor per member row."""

    @staticmethod
    def forward(ctx, x, factors):
        ctx.save_for_backward(factors)
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        (factors,) = ctx.saved_tensors
        return grad * factors.view(-1, 1), None


# member k: (its two amplifications of the gradient); float32 overflows from ~3.4e38
MEMBERS = [
    (1.0, 1.0),  # ordinary, below max_norm
    (1.0, 1e3),  # above max_norm
    (1e30, 1e30),  # 1e60: inf in float32, rescued at the second scale (1e-24)
    (1e38, 1e38),  # 1e76 (x direction 1e1): beyond even 1e-36 in float32
    (1e30, 1e30),  # overflowing like member 2 but with an infinite loss: not rescued
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_overflow_rescue_per_member_keeps_the_others_exact(dtype) -> None:
    gen = torch.Generator().manual_seed(11)
    start = torch.randn(len(MEMBERS), 17, generator=gen, dtype=dtype)
    directions = torch.randn(len(MEMBERS), 17, generator=gen, dtype=dtype) * 10
    offsets = torch.zeros(len(MEMBERS), dtype=dtype)
    offsets[4] = math.inf
    amplify = [torch.tensor([m[j] for m in MEMBERS], dtype=dtype) for j in range(2)]
    w = nn.Parameter(start.clone())
    losses = _population_losses(w, amplify, directions, offsets)
    norms, retries = backward_and_clip_members(losses, [w], max_norm=1.0)
    for k, (f1, f2) in enumerate(MEMBERS[:4]):  # the single run of member k
        v = nn.Parameter(start[k].clone())
        loss = (Amplify.apply(Amplify.apply(v, f1), f2) * directions[k]).sum()
        loss.backward(retain_graph=True)  # the single run's update, as in training/loop.py
        norm, redone = clip_or_rescue(loss, [v], max_norm=1.0)
        assert (norms[k], retries[k]) == (norm, redone) or (
            math.isnan(norms[k]) and math.isnan(norm) and retries[k] == redone
        ), f"member {k}"
        assert torch.equal(w.grad[k], v.grad), f"member {k}"
    assert retries[4] == 0  # its loss is infinite: the caller ends it, no rescue
    if dtype == torch.float32:  # the rescue path was taken, at its two depths
        assert retries[:4] == [0, 0, 2, 3] and math.isfinite(norms[2])
        assert not math.isfinite(norms[4])


def test_members_without_overflow_are_untouched_by_a_neighbours_rescue() -> None:
    """The same population without the overflowing members gives the same gradient rows."""
    gen = torch.Generator().manual_seed(5)
    start = torch.randn(3, 9, generator=gen)
    directions = torch.randn(3, 9, generator=gen)
    amplify = [torch.tensor([1.0, 1e30, 1.0]), torch.tensor([2.0, 1e30, 1e2])]
    w = nn.Parameter(start.clone())
    losses = _population_losses(w, amplify, directions, torch.zeros(3))
    _, retries = backward_and_clip_members(losses, [w], max_norm=1.0)
    assert retries == [0, 2, 0]
    alone = nn.Parameter(start[[0, 2]].clone())
    quiet = [a[[0, 2]] for a in amplify]
    backward_and_clip_members(
        _population_losses(alone, quiet, directions[[0, 2]], torch.zeros(2)), [alone], 1.0
    )
    assert torch.equal(w.grad[[0, 2]], alone.grad)
