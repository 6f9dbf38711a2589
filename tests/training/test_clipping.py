"""The paper's gradient rescaling (global norm rescaled to max_norm when larger), also for
gradients beyond float32's range."""

from __future__ import annotations

import math

import pytest
import torch
from exploding import Amplify
from torch import nn

from gru_repro.models import make_unit
from gru_repro.training.clipping import OVERFLOW_SCALES, clip_gradient_norm, clip_or_rescue


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


def backward_then_clip(loss: torch.Tensor, params: list[nn.Parameter]) -> tuple[float, int]:
    """As the training loop does it: a backward that keeps the graph, then clip_or_rescue."""
    loss.backward(retain_graph=True)
    return clip_or_rescue(loss, params, max_norm=1.0)


def test_overflowing_gradient_is_recomputed_on_a_scaled_loss() -> None:
    """Gradient entries ~1e60 (inf in float32) from a finite loss: recomputed at loss scales
    1e-12 (still inf) then 1e-24; the result is the exact clipped direction of the true one."""
    w = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    direction = torch.tensor([3.0, 4.0, 0.0])  # d loss / d w, times 1e60 through the amplifiers
    loss = (Amplify.apply(Amplify.apply(w, 1e30), 1e30) * direction).sum()
    assert torch.isfinite(loss)
    norm, retries = backward_then_clip(loss, [w])
    assert retries == 2
    assert norm == pytest.approx(5e60, rel=1e-5)
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.8, 0.0]))


def test_ordinary_gradients_need_no_retry() -> None:
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    norm, retries = backward_then_clip((w * torch.tensor([0.3, 0.4])).sum(), [w])
    assert retries == 0 and norm == pytest.approx(0.5)
    torch.testing.assert_close(w.grad, torch.tensor([0.3, 0.4]))
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    norm, retries = backward_then_clip((w * torch.tensor([30.0, 40.0])).sum(), [w])
    assert retries == 0 and norm == pytest.approx(50.0)
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.8]))  # clipped, no rescue


def test_a_rescue_replaces_the_overflowed_gradient_of_every_parameter() -> None:
    """Two parameters whose gradients (3e40, 4e40) both overflow: after one rescue each holds
    its part of the clipped gradient of the loss itself, not the inf of the first pass."""
    w, v = nn.Parameter(torch.tensor([1.0, 1.0])), nn.Parameter(torch.tensor([2.0]))
    loss = (Amplify.apply(Amplify.apply(w, 1e20), 1e20) * torch.tensor([3.0, 0.0])).sum()
    loss = loss + (Amplify.apply(Amplify.apply(v, 1e20), 1e20) * 4.0).sum()
    assert torch.isfinite(loss)
    norm, retries = backward_then_clip(loss, [w, v])
    assert retries == 1 and norm == pytest.approx(5e40, rel=1e-5)
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.0]))
    torch.testing.assert_close(v.grad, torch.tensor([0.8]))


def test_gradient_beyond_every_scale_stays_non_finite() -> None:
    w = nn.Parameter(torch.ones(2))
    loss = Amplify.apply(Amplify.apply(Amplify.apply(w, 1e38), 1e38), 1e38).sum()
    norm, retries = backward_then_clip(loss, [w])
    assert retries == len(OVERFLOW_SCALES) and not math.isfinite(norm)


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_units_give_the_same_gradient_on_a_second_backward(unit: str) -> None:
    """The recomputation reuses the graph (retain_graph): the units' hand-written backward
    passes must leave their saved tensors untouched."""
    layer = make_unit(unit, 5, 7)
    x = torch.randn(9, 3, 5)
    out, _ = layer(x)
    loss = (out * torch.randn_like(out)).sum()
    loss.backward(retain_graph=True)
    first = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad(set_to_none=True)
    loss.backward()
    for a, p in zip(first, layer.parameters(), strict=True):
        assert torch.equal(a, p.grad)
