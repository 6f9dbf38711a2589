"""GaussianMixtureHead: NLL against scipy in float64, stability at collapse, sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from gru_repro.models.heads import get_head_class
from gru_repro.models.mixture_head import GaussianMixtureHead


def _reference_nll(logits, means, scales, targets) -> np.ndarray:
    """-log sum_k pi_k prod_d N(y_d; mu_kd, s_kd), float64, with scipy.stats."""
    log_pi = logits - logsumexp(logits, axis=-1, keepdims=True)  # (T, B, K)
    log_comp = norm.logpdf(targets[..., None, :], means, scales).sum(-1)  # (T, B, K)
    return -logsumexp(log_pi + log_comp, axis=-1)  # (T, B)


def test_registered_under_gmm_with_paper_defaults() -> None:
    head = get_head_class("gmm")(hidden_size=8, output_size=10)
    assert isinstance(head, GaussianMixtureHead)
    assert head.n_components == 20
    assert head(torch.zeros(3, 2, 8)).shape == (3, 2, 20 * (1 + 2 * 10))


def test_nll_matches_scipy_float64_on_random_params() -> None:
    torch.manual_seed(0)
    head = GaussianMixtureHead(hidden_size=6, output_size=10, n_components=20).double()
    params = torch.randn(5, 3, head.param_size, dtype=torch.float64) * 2
    targets = torch.randn(5, 3, 10, dtype=torch.float64) * 1.5
    logits, means, scales = (t.numpy() for t in head.unpack(params))
    expected = _reference_nll(logits, means, scales, targets.numpy())
    got = head.nll(params, targets)
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_unpack_layout_and_scale_floor() -> None:
    head = GaussianMixtureHead(hidden_size=4, output_size=3, n_components=2, min_scale=0.01)
    params = torch.arange(head.param_size, dtype=torch.float32).expand(1, 1, -1)
    logits, means, scales = head.unpack(params)
    assert logits.flatten().tolist() == [0.0, 1.0]
    assert means[0, 0].tolist() == [[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]  # component-major
    very_negative = torch.full((1, head.param_size), -1e4)
    torch.testing.assert_close(head.unpack(very_negative)[2], torch.full((1, 2, 3), 0.01))


def test_one_component_one_sample_is_a_normal_density() -> None:
    head = GaussianMixtureHead(hidden_size=2, output_size=1, n_components=1, min_scale=1e-6)
    raw = np.log(np.expm1(0.5 - 1e-6))  # softplus(raw) + floor = 0.5
    params = torch.tensor([[[0.0, 0.3, raw]]], dtype=torch.float64)
    nll = head.nll(params, torch.tensor([[[1.0]]], dtype=torch.float64))
    assert nll.item() == pytest.approx(-norm.logpdf(1.0, 0.3, 0.5), rel=1e-9)


def test_gradients_finite_when_a_component_collapses() -> None:
    torch.manual_seed(1)
    head = GaussianMixtureHead(hidden_size=4, output_size=10, n_components=20)
    k, kd = 20, 200
    params = torch.randn(4, 2, head.param_size)
    params[..., 0] = 1e4  # one component takes all the weight ...
    params[..., k + kd : k + kd + 10] = -1e4  # ... and its scales collapse to the floor
    params[..., 1] = -1e4  # another is switched off
    params[..., k + kd + 10 : k + kd + 20] = 1e4  # and one is huge
    params.requires_grad_(True)
    targets = torch.randn(4, 2, 10) * 3  # far from the collapsed mean
    nll = head.nll(params, targets)
    nll.sum().backward()
    assert torch.isfinite(nll).all()
    assert torch.isfinite(params.grad).all()
    # Same through the layer's weights: a large hidden state does not break the gradient.
    hidden = torch.randn(3, 2, 4) * 1e3
    head.nll(head(hidden), torch.randn(3, 2, 10)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


def test_sample_is_reproducible_and_follows_the_mixture() -> None:
    head = GaussianMixtureHead(hidden_size=2, output_size=2, n_components=2, min_scale=1e-3)
    # Component 0 (weight ~0.27): mean -5; component 1 (~0.73): mean +5; std ~0.1.
    raw = float(np.log(np.expm1(0.1)))
    one = torch.tensor([0.0, 1.0, -5.0, -5.0, 5.0, 5.0, raw, raw, raw, raw])
    params = one.expand(20000, -1)
    a = head.sample(params, torch.Generator().manual_seed(3))
    b = head.sample(params, torch.Generator().manual_seed(3))
    assert a.shape == (20000, 2)
    torch.testing.assert_close(a, b)
    positive = (a[:, 0] > 0).float().mean().item()
    assert positive == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(), abs=0.02)
    assert (a[:, 0] > 0).eq(a[:, 1] > 0).all()  # both samples come from the same component
    assert a[a[:, 0] > 0].std(0).mean().item() == pytest.approx(0.101, abs=0.01)


def test_bad_sizes_raise_clear_errors() -> None:
    head = GaussianMixtureHead(hidden_size=2, output_size=10)
    with pytest.raises(ValueError, match="expected 420"):
        head.unpack(torch.zeros(1, 1, 100))
    with pytest.raises(ValueError, match="targets have last size 3"):
        head.nll(torch.zeros(1, 1, 420), torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="min_scale"):
        GaussianMixtureHead(hidden_size=2, output_size=10, min_scale=0.0)
