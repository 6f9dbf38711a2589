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


def _assert_same_outputs_and_grads(ours, ref, *, with_cell: bool = False) -> None:
    """Run ours and the torch.nn reference on the same inputs and initial state; the output
    sequence, final state(s) and the gradients w.r.t. inputs and initial state(s) must agree.
    Parameter gradients are compared by the caller (names differ per unit)."""
    x, h0, c0 = _inputs()
    w_out, w_h, w_c = _loss_weights()
    starts = (h0, c0) if with_cell else (h0,)
    state_a = tuple(s.clone().requires_grad_() for s in starts)
    state_b = tuple(s.clone().requires_grad_() for s in starts)
    batched_b = tuple(s.unsqueeze(0) for s in state_b)  # torch.nn: (layers, B, H)
    xa, out_a, final_a = _run(ours, x, state_a if with_cell else state_a[0])
    xb, out_b, final_b = _run(ref, x, batched_b if with_cell else batched_b[0])
    finals_a = tuple(final_a) if with_cell else (final_a,)
    finals_b = tuple(f[0] for f in (final_b if with_cell else (final_b,)))
    torch.testing.assert_close(out_a, out_b)
    for fa, fb in zip(finals_a, finals_b, strict=True):
        torch.testing.assert_close(fa, fb)
    for out, finals in ((out_a, finals_a), (out_b, finals_b)):
        loss = (out * w_out).sum()
        for final, weight in zip(finals, (w_h, w_c), strict=False):
            loss = loss + (final * weight).sum()
        loss.backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    for sa, sb in zip(state_a, state_b, strict=True):
        torch.testing.assert_close(sa.grad, sb.grad)


@pytest.mark.parametrize("init", ["paper", "torch"])
def test_tanh_equals_nn_rnn(init: str) -> None:
    ours = TanhRNN(I, H, init=init, dtype=D)
    ref = nn.RNN(I, H, nonlinearity="tanh", dtype=D)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(ours.weight_ih)
        ref.weight_hh_l0.copy_(ours.weight_hh)
        ref.bias_ih_l0.copy_(ours.bias * 0.25)
        ref.bias_hh_l0.copy_(ours.bias * 0.75)  # the two nn biases sum to our one
    _assert_same_outputs_and_grads(ours, ref)
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
    _assert_same_outputs_and_grads(ours, ref)
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
    _assert_same_outputs_and_grads(ours, ref, with_cell=True)
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
