"""Our tanh, reset_after GRU and peephole-free LSTM equal torch.nn's with copied weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gru_repro.models import GRU, LSTM, TanhRNN

D = torch.float64
T, B, I, H = 7, 3, 5, 4  # noqa: E741 (torch.nn names: steps, batch, input, hidden)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, I, dtype=D, generator=gen)
    h0 = torch.randn(B, H, dtype=D, generator=gen)
    c0 = torch.randn(B, H, dtype=D, generator=gen)
    return x, h0, c0


def _loss_weights(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random cotangents so every output (sequence, h_n, c_n) gets a distinct gradient."""
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(T, B, H, dtype=D, generator=gen),
        torch.randn(B, H, dtype=D, generator=gen),
        torch.randn(B, H, dtype=D, generator=gen),
    )


def _run(module, x, state):
    x = x.clone().requires_grad_()
    out, final = module(x, state)
    return x, out, final


@pytest.mark.parametrize("init", ["paper", "torch"])
def test_tanh_equals_nn_rnn(init: str) -> None:
    ours = TanhRNN(I, H, init=init, dtype=D)
    ref = nn.RNN(I, H, nonlinearity="tanh", dtype=D)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ours.weight_ih)
        ref.weight_hh_l0.copy_(ours.weight_hh)
        ref.bias_ih_l0.copy_(ours.bias * 0.25)
        ref.bias_hh_l0.copy_(ours.bias * 0.75)  # the two nn biases sum to our one
    x, h0, _ = _inputs()
    w_out, w_h, _ = _loss_weights()
    h0_a, h0_b = h0.clone().requires_grad_(), h0.clone().requires_grad_()
    xa, out_a, hn_a = _run(ours, x, h0_a)
    xb, out_b, hn_b = _run(ref, x, h0_b.unsqueeze(0))
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(hn_a, hn_b[0])
    ((out_a * w_out).sum() + (hn_a * w_h).sum()).backward()
    ((out_b * w_out).sum() + (hn_b[0] * w_h).sum()).backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(h0_a.grad, h0_b.grad)
    torch.testing.assert_close(ours.weight_ih.grad, ref.weight_ih_l0.grad)
    torch.testing.assert_close(ours.weight_hh.grad, ref.weight_hh_l0.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias_ih_l0.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias_hh_l0.grad)


def test_reset_after_gru_equals_nn_gru() -> None:
    ours = GRU(I, H, reset_after=True, init="torch", dtype=D)
    ref = nn.GRU(I, H, dtype=D)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ours.weight_ih)
        ref.weight_hh_l0.copy_(ours.weight_hh)
        ref.bias_ih_l0.copy_(ours.bias_ih)
        ref.bias_hh_l0.copy_(ours.bias_hh)
    x, h0, _ = _inputs()
    w_out, w_h, _ = _loss_weights()
    h0_a, h0_b = h0.clone().requires_grad_(), h0.clone().requires_grad_()
    xa, out_a, hn_a = _run(ours, x, h0_a)
    xb, out_b, hn_b = _run(ref, x, h0_b.unsqueeze(0))
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(hn_a, hn_b[0])
    ((out_a * w_out).sum() + (hn_a * w_h).sum()).backward()
    ((out_b * w_out).sum() + (hn_b[0] * w_h).sum()).backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(h0_a.grad, h0_b.grad)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(ref, name + "_l0").grad)


def test_peephole_free_lstm_equals_nn_lstm() -> None:
    ours = LSTM(I, H, peephole=False, init="torch", dtype=D)
    ref = nn.LSTM(I, H, dtype=D)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ours.weight_ih)
        ref.weight_hh_l0.copy_(ours.weight_hh)
        ref.bias_ih_l0.copy_(ours.bias - 0.3)
        ref.bias_hh_l0.fill_(0.3)
    x, h0, c0 = _inputs()
    w_out, w_h, w_c = _loss_weights()
    state_a = (h0.clone().requires_grad_(), c0.clone().requires_grad_())
    state_b = (h0.clone().requires_grad_(), c0.clone().requires_grad_())
    xa, out_a, (hn_a, cn_a) = _run(ours, x, state_a)
    xb, out_b, (hn_b, cn_b) = _run(ref, x, (state_b[0].unsqueeze(0), state_b[1].unsqueeze(0)))
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(hn_a, hn_b[0])
    torch.testing.assert_close(cn_a, cn_b[0])
    ((out_a * w_out).sum() + (hn_a * w_h).sum() + (cn_a * w_c).sum()).backward()
    ((out_b * w_out).sum() + (hn_b[0] * w_h).sum() + (cn_b[0] * w_c).sum()).backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(state_a[0].grad, state_b[0].grad)
    torch.testing.assert_close(state_a[1].grad, state_b[1].grad)
    torch.testing.assert_close(ours.weight_ih.grad, ref.weight_ih_l0.grad)
    torch.testing.assert_close(ours.weight_hh.grad, ref.weight_hh_l0.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias_ih_l0.grad)


def test_paper_gru_differs_from_nn_gru() -> None:
    """The paper's GRU is a different model, not torch.nn.GRU renamed (guards the switch)."""
    torch.manual_seed(0)
    paper = GRU(I, H, init="torch", dtype=D)
    after = GRU(I, H, reset_after=True, init="torch", dtype=D)
    with torch.no_grad():
        after.weight_ih.copy_(paper.weight_ih)
        after.weight_hh.copy_(paper.weight_hh)
        after.bias_ih.copy_(paper.bias)
        after.bias_hh.zero_()
    x, _, _ = _inputs()
    assert not torch.allclose(paper(x)[0], after(x)[0])
