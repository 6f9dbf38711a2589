"""The paper's gradient rescaling: global norm rescaled to max_norm when larger."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gru_repro.training.clipping import clip_gradient_norm


def _params(*grads: torch.Tensor) -> list[nn.Parameter]:
    params = []
    for g in grads:
        p = nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        params.append(p)
    return params


def test_matches_torch_for_ordinary_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    grads = (torch.randn(30, 4, generator=gen) * 3, torch.randn(7, generator=gen))
    ours, theirs = _params(*grads), _params(*grads)
    norm = clip_gradient_norm(ours, 1.0)
    expected = float(torch.nn.utils.clip_grad_norm_(theirs, 1.0))
    assert norm == pytest.approx(expected, rel=1e-6) and norm > 1.0
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_huge_finite_gradients_are_rescaled_not_lost() -> None:
    """Entries of 1e27 (tanh RNN on speech B at init): the float32 sum of squares overflows,
    torch's clip reports inf; the norm is finite and the rescaled gradient has norm 1."""
    grads = (torch.full((400, 400), 1e27), torch.full((400,), -2e27))
    assert not math.isfinite(float(torch.nn.utils.clip_grad_norm_(_params(*grads), 1.0)))
    params = _params(*grads)
    norm = clip_gradient_norm(params, 1.0)
    assert norm == pytest.approx(math.sqrt(400 * 400 * 1e54 + 400 * 4e54), rel=1e-6)
    flat = torch.cat([p.grad.flatten() for p in params])
    assert torch.isfinite(flat).all()
    assert float(flat.double().norm()) == pytest.approx(1.0, rel=1e-5)
    assert flat[-1] < 0 < flat[0]  # direction kept


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_non_finite_entry_gives_a_non_finite_norm_and_no_rescaling(bad: float) -> None:
    g = torch.ones(5)
    g[2] = bad
    params = _params(g, torch.ones(3))
    assert not math.isfinite(clip_gradient_norm(params, 1.0))
    assert torch.equal(params[1].grad, torch.ones(3))  # left as it was


def test_small_gradients_untouched_and_missing_ones_skipped() -> None:
    params = _params(torch.tensor([0.3, 0.4]))
    params.append(nn.Parameter(torch.ones(2)))  # no .grad
    assert clip_gradient_norm(params, 1.0) == pytest.approx(0.5)
    assert torch.equal(params[0].grad, torch.tensor([0.3, 0.4]))
    assert clip_gradient_norm([nn.Parameter(torch.ones(1))], 1.0) == 0.0
