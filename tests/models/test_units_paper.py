"""The paper's units: one step by hand, stepwise == whole sequence, gradcheck of every BPTT and
the plain-autograd reference (models/reference.py), under both loop backends."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from gru_repro.models import GRU, LSTM, TanhRNN, kernels, make_unit
from gru_repro.models.reference import reference_forward

D = torch.float64
UNIT_CASES = [
    ("tanh", {}),
    ("gru", {"reset_after": False}),
    ("gru", {"reset_after": True}),
    ("lstm", {"peephole": True}),
    ("lstm", {"peephole": False}),
]
BACKENDS = ["python", pytest.param("cpp", marks=pytest.mark.cpp)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The test runs under the Python loops and under the C++ loops (built; error if not)."""
    if request.param == "cpp":
        request.getfixturevalue("cpp_loops")
    with kernels.use_backend(request.param):
        yield request.param


def _randomised(unit: str, options: dict, input_size: int, hidden: int, seed: int = 0):
    """A unit with every parameter random (peepholes and biases included, not the zero init)."""
    torch.manual_seed(seed)
    layer = make_unit(unit, input_size, hidden, init="torch", **options).to(D)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-0.8, 0.8)
    return layer


def _state(unit: str, batch: int, hidden: int, gen: torch.Generator):
    h = torch.randn(batch, hidden, dtype=D, generator=gen)
    if unit == "lstm":
        return h, torch.randn(batch, hidden, dtype=D, generator=gen)
    return h


def test_tanh_one_step_by_hand() -> None:
    layer = _randomised("tanh", {}, 3, 2)
    x = torch.tensor([[[0.5, -1.0, 2.0]]], dtype=D)
    h0 = torch.tensor([[0.3, -0.7]], dtype=D)
    W, U, b = layer.weight_ih, layer.weight_hh, layer.bias
    expected = torch.tanh(W @ x[0, 0] + U @ h0[0] + b)
    out, h_n = layer(x, h0)
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(h_n[0], expected)


def test_paper_gru_one_step_by_hand() -> None:
    layer = _randomised("gru", {}, 3, 2)
    x = torch.tensor([0.5, -1.0, 2.0], dtype=D)
    h = torch.tensor([0.3, -0.7], dtype=D)
    (W_r, W_z, W), (U_r, U_z, U) = layer.weight_ih.split(2), layer.weight_hh.split(2)
    b_r, b_z, b = layer.bias.split(2)
    r = torch.sigmoid(W_r @ x + U_r @ h + b_r)
    z = torch.sigmoid(W_z @ x + U_z @ h + b_z)
    cand = torch.tanh(W @ x + U @ (r * h) + b)
    expected = (1 - z) * h + z * cand
    out, h_n = layer(x.view(1, 1, 3), h.view(1, 2))
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(h_n[0], expected)


def test_peephole_lstm_one_step_by_hand() -> None:
    layer = _randomised("lstm", {"peephole": True}, 3, 2)
    x = torch.tensor([0.5, -1.0, 2.0], dtype=D)
    h = torch.tensor([0.3, -0.7], dtype=D)
    c = torch.tensor([-1.2, 0.4], dtype=D)
    W_i, W_f, W_c, W_o = layer.weight_ih.split(2)
    U_i, U_f, U_c, U_o = layer.weight_hh.split(2)
    b_i, b_f, b_c, b_o = layer.bias.split(2)
    V_i, V_f, V_o = layer.weight_peephole
    i = torch.sigmoid(W_i @ x + U_i @ h + V_i * c + b_i)
    f = torch.sigmoid(W_f @ x + U_f @ h + V_f * c + b_f)
    c_new = f * c + i * torch.tanh(W_c @ x + U_c @ h + b_c)
    o = torch.sigmoid(W_o @ x + U_o @ h + V_o * c_new + b_o)  # the current cell
    expected_h = o * torch.tanh(c_new)
    out, (h_n, c_n) = layer(x.view(1, 1, 3), (h.view(1, 2), c.view(1, 2)))
    torch.testing.assert_close(out[0, 0], expected_h)
    torch.testing.assert_close(h_n[0], expected_h)
    torch.testing.assert_close(c_n[0], c_new)


@pytest.mark.parametrize(("unit", "options"), UNIT_CASES)
def test_stepwise_equals_whole_sequence(unit: str, options: dict) -> None:
    layer = _randomised(unit, options, 4, 5)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(9, 2, 4, dtype=D, generator=gen)
    state0 = _state(unit, 2, 5, gen)
    whole, final = layer(x, state0)
    state, steps = state0, []
    for t in range(x.shape[0]):
        out, state = layer(x[t : t + 1], state)
        steps.append(out[0])
    torch.testing.assert_close(torch.stack(steps), whole)
    if unit == "lstm":
        torch.testing.assert_close(state[0], final[0])
        torch.testing.assert_close(state[1], final[1])
    else:
        torch.testing.assert_close(state, final)
    torch.testing.assert_close(whole[-1], final[0] if unit == "lstm" else final)


@pytest.mark.parametrize(("unit", "options"), UNIT_CASES)
def test_gradcheck_through_inputs_state_and_weights(unit: str, options: dict, backend) -> None:
    """The hand-written backward against finite differences, every input of the Function."""
    layer = _randomised(unit, options, 3, 4, seed=1)
    names = [name for name, _ in layer.named_parameters()]
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(4, 2, 3, dtype=D, generator=gen, requires_grad=True)
    state = _state(unit, 2, 4, gen)
    states = state if unit == "lstm" else (state,)
    states = tuple(s.requires_grad_() for s in states)
    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())

    def run(x, *rest):
        hx, weights = rest[: len(states)], rest[len(states) :]
        hx = tuple(hx) if unit == "lstm" else hx[0]
        out, final = functional_call(layer, dict(zip(names, weights, strict=True)), (x, hx))
        finals = final if unit == "lstm" else (final,)
        return (out, *finals)

    assert torch.autograd.gradcheck(run, (x, *states, *params))


@pytest.mark.parametrize(("unit", "options"), UNIT_CASES)
def test_forward_reads_weights_at_call_time(unit: str, options: dict) -> None:
    """functional_call with noisy weight copies changes the output and gives them gradients
    (weight noise relies on this)."""
    layer = _randomised(unit, options, 3, 4)
    x = torch.randn(5, 2, 3, dtype=D)
    clean, _ = layer(x)
    noisy = {
        "weight_ih": (layer.weight_ih + 0.1).detach().requires_grad_(),
        "weight_hh": (layer.weight_hh - 0.1).detach().requires_grad_(),
    }
    out, _ = functional_call(layer, noisy, (x,))
    assert not torch.allclose(out, clean)
    out.sum().backward()
    assert noisy["weight_ih"].grad is not None and noisy["weight_hh"].grad.abs().sum() > 0
    assert layer.weight_ih.grad is None  # the module's own weights were not used


def test_paper_init() -> None:
    torch.manual_seed(0)
    for layer in (TanhRNN(6, 5), GRU(6, 5), LSTM(6, 5)):
        assert layer.weight_ih.abs().max() <= 0.1
        for block in layer.weight_hh.detach().split(5):
            torch.testing.assert_close(block @ block.T, torch.eye(5), atol=1e-5, rtol=0)
        for name, p in layer.named_parameters():
            if name not in ("weight_ih", "weight_hh"):
                assert torch.count_nonzero(p) == 0, name


def test_torch_init_bounds() -> None:
    torch.manual_seed(0)
    layer = LSTM(6, 16, init="torch")
    for p in layer.parameters():
        assert p.abs().max() <= 0.25 and p.abs().max() > 0.1


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_bad_shapes_are_clear_errors(unit: str) -> None:
    layer = make_unit(unit, 3, 4)
    with pytest.raises(ValueError, match="time-major"):
        layer(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        bad = torch.zeros(3, 4)
        layer(torch.zeros(5, 2, 3), (bad, bad) if unit == "lstm" else bad)


def test_empty_sequence_returns_initial_state() -> None:
    h0 = torch.randn(2, 4)
    out, h_n = GRU(3, 4)(torch.zeros(0, 2, 3), h0)
    assert out.shape == (0, 2, 4)
    torch.testing.assert_close(h_n, h0)


@pytest.mark.parametrize(("unit", "options"), UNIT_CASES)
def test_hand_written_bptt_equals_autograd_reference(unit: str, options: dict, backend) -> None:
    """Over a longer sequence than gradcheck can afford: the fast path vs plain autograd, every
    output (final states included) and the gradients of input, initial state and weights."""
    layer = _randomised(unit, options, 5, 6, seed=2)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(30, 3, 5, dtype=D, generator=gen)
    state = _state(unit, 3, 6, gen)
    states = state if unit == "lstm" else (state,)
    cotangents = [torch.randn(30, 3, 6, dtype=D, generator=gen)]
    cotangents += [torch.randn(3, 6, dtype=D, generator=gen) for _ in states]
    results = []
    for forward in (layer, lambda x, hx: reference_forward(layer, x, hx)):
        layer.zero_grad()
        x_in = x.clone().requires_grad_()
        states_in = tuple(s.clone().requires_grad_() for s in states)
        out, final = forward(x_in, states_in if unit == "lstm" else states_in[0])
        outputs = [out, *(final if unit == "lstm" else (final,))]
        sum((o * c).sum() for o, c in zip(outputs, cotangents, strict=True)).backward()
        grads = [x_in.grad, *(s.grad for s in states_in), *(p.grad for p in layer.parameters())]
        results.append(([o.detach() for o in outputs], grads))
    (outputs_fast, grads_fast), (outputs_ref, grads_ref) = results
    assert len(grads_fast) == 1 + len(states) + len(list(layer.parameters()))
    for fast, ref in zip(outputs_fast + grads_fast, outputs_ref + grads_ref, strict=True):
        assert fast is not None and ref is not None
        torch.testing.assert_close(fast, ref)
