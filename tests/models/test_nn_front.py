"""gru_repro.nn beyond torch.nn's forms: the paper's variants equal the project's units,
initialisation, refusals with clear messages, dropout, and the two backward paths."""

from __future__ import annotations

import pytest
import torch
from nn_cases import D, H, I, assert_same, backend, forward_backward  # noqa: F401
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import gru_repro.nn as gnn
from gru_repro.models import GRU as GRUUnit
from gru_repro.models import LSTM as LSTMUnit

T, B = 5, 3


def _x(*shape, seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def _randomise(module: nn.Module, seed: int = 0) -> None:
    """Nonzero everything (biases and peepholes included), so every path is exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=D) - 0.5)


class _UnitAsTorch(nn.Module):
    """A project unit with torch.nn's hx layout (1, B, H) and parameter names (suffix _l0)."""

    def __init__(self, unit: nn.Module) -> None:
        super().__init__()
        self.unit = unit

    def forward(self, x, hx):
        if isinstance(hx, tuple):
            out, (h, c) = self.unit(x, (hx[0][0], hx[1][0]))
            return out, (h.unsqueeze(0), c.unsqueeze(0))
        out, h = self.unit(x, hx[0])
        return out, h.unsqueeze(0)

    def named_parameters(self, *args, **kwargs):
        for name, p in self.unit.named_parameters():
            yield f"{name}_l0", p


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize(
    ("front", "unit"),
    [
        (gnn.GRU(I, H, dtype=D), GRUUnit(I, H, dtype=D)),
        (gnn.LSTM(I, H, dtype=D), LSTMUnit(I, H, dtype=D)),
    ],
    ids=["paper_gru", "peephole_lstm"],
)
def test_paper_forms_equal_the_units(front, unit) -> None:
    _randomise(unit)
    front.load_state_dict({f"{name}_l0": p for name, p in unit.state_dict().items()})
    twin = _UnitAsTorch(unit)
    hx = (
        (_x(1, B, H, seed=2), _x(1, B, H, seed=3))
        if isinstance(front, gnn.LSTM)
        else (_x(1, B, H, seed=2))
    )
    x = _x(T, B, I)
    assert_same(forward_backward(front, x, hx), forward_backward(twin, x, hx))


def test_paper_init_and_torch_init() -> None:
    paper = gnn.GRU(I, H, num_layers=2, bidirectional=True)
    for name, p in paper.named_parameters():
        if name.startswith("weight_hh"):
            for block in p.detach().split(H):
                torch.testing.assert_close(block @ block.t(), torch.eye(H))
        elif name.startswith("weight_ih"):
            assert p.abs().max() <= 0.1 and p.std() > 0
        else:
            assert name.startswith("bias_l") and (p == 0).all()
    lstm = gnn.LSTM(I, H, init="torch")
    for p in lstm.parameters():
        assert p.abs().max() <= H**-0.5 and (p != 0).all()


def test_paper_forms_refuse_torch_state_dicts_with_a_hint() -> None:
    with pytest.raises(RuntimeError, match=r"GRU\(\.\.\., reset_after=True\)"):
        gnn.GRU(I, H).load_state_dict(nn.GRU(I, H).state_dict())
    with pytest.raises(RuntimeError, match=r"LSTM\(\.\.\., peephole=False\)"):
        gnn.LSTM(I, H, bias=False).load_state_dict(nn.LSTM(I, H, bias=False).state_dict())


@pytest.mark.parametrize(
    ("module", "shape", "message"),
    [
        (gnn.GRU(10, H), (4, 7, 3), "expected input of shape (T, B, 10) with batch_first=False"),
        (gnn.GRU(10, H, batch_first=True), (4, 7, 3), "shape (B, T, 10) with batch_first=True"),
        (gnn.LSTM(10, H), (4, 2, 7, 10), "(or (T, 10) unbatched), got (4, 2, 7, 10)"),
        (gnn.RNN(10, H), (10,), "expected input of shape (T, B, 10)"),
        (gnn.RNN(10, H), (4, 3), "(or (T, 10) unbatched), got (4, 3)"),
    ],
)
def test_wrong_input_shape_is_refused(module, shape, message) -> None:
    with pytest.raises(ValueError, match="^" + module.unit_name) as info:
        module(torch.zeros(shape))
    assert message in str(info.value)


def test_wrong_packed_data_and_dtype_are_refused() -> None:
    packed = pack_padded_sequence(torch.zeros(4, 2, 5), torch.tensor([4, 2]))
    with pytest.raises(ValueError, match=r"PackedSequence data of shape \(N, 3\), got \(6, 5\)"):
        gnn.GRU(3, H)(packed)
    with pytest.raises(ValueError, match="parameters are torch.float64"):
        gnn.GRU(3, H, dtype=D)(torch.zeros(4, 2, 3))


def test_wrong_hx_is_refused() -> None:
    gru = gnn.GRU(I, H, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"expected hx of shape \(4, 3, 4\) \(num_layers \* "):
        gru(torch.zeros(T, B, I), torch.zeros(2, B, H))
    with pytest.raises(ValueError, match=r"hx of shape \(4, 4\) .* unbatched input, got \(4, 1, 4"):
        gru(torch.zeros(T, I), torch.zeros(4, 1, H))
    lstm = gnn.LSTM(I, H)
    with pytest.raises(ValueError, match=r"pair \(h_0, c_0\)"):
        lstm(torch.zeros(T, B, I), torch.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"expected c_0 of shape \(1, 3, 4\)"):
        lstm(torch.zeros(T, B, I), (torch.zeros(1, B, H), torch.zeros(1, 2, H)))


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="tanh RNN only"):
        gnn.RNN(I, H, nonlinearity="relu")
    with pytest.raises(ValueError, match="proj_size"):
        gnn.LSTM(I, H, proj_size=2)
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\]"):
        gnn.GRU(I, H, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        gnn.GRU(I, H, init="xavier")
    with pytest.raises(ValueError, match="reset_after must be True or False"):
        gnn.GRU(I, H, reset_after="yes")


def test_dropout_between_layers_in_training_only() -> None:
    gru = gnn.GRU(I, H, num_layers=2, dropout=0.5, dtype=D)
    plain = gnn.GRU(I, H, num_layers=2, dtype=D)
    plain.load_state_dict(gru.state_dict())
    x = _x(T, B, I)
    train_out, train_h = gru(x)
    gru.eval()
    eval_out, eval_h = gru(x)
    assert not torch.allclose(train_out, eval_out)
    torch.testing.assert_close(train_h[0], eval_h[0])  # layer 0 runs before any dropout
    torch.testing.assert_close(gru(x)[0], eval_out)  # eval is deterministic
    torch.testing.assert_close(plain(x)[0], eval_out)  # and is the model without dropout


def test_no_dropout_after_the_last_layer() -> None:
    with pytest.warns(UserWarning, match="does nothing with num_layers=1"):
        lstm = gnn.LSTM(I, H, dropout=0.9, dtype=D)
    x = _x(T, B, I)
    train_out = lstm(x)[0]
    torch.testing.assert_close(lstm.eval()(x)[0], train_out)


@pytest.mark.slow
@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("front", [gnn.GRU, gnn.LSTM], ids=["paper_gru", "peephole_lstm"])
def test_paper_forms_double_backward_gradgradcheck(front) -> None:
    """Second derivatives (inputs and, through functional_call, parameters) against finite
    differences; torch.nn has no paper forms to compare with."""
    module = front(2, 2, bidirectional=True, dtype=D)
    _randomise(module)
    names = [name for name, _ in module.named_parameters()]

    def outputs(x, *params):
        out, _ = torch.func.functional_call(module, dict(zip(names, params, strict=True)), (x,))
        return out

    x = _x(3, 2, 2).requires_grad_()
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    assert torch.autograd.gradgradcheck(outputs, (x, *params))


@pytest.mark.parametrize("create_graph", [False, True], ids=["first_order", "create_graph"])
def test_backward_frees_the_loops_graph_and_can_run_again(create_graph) -> None:
    """The fast loops' graph goes with the first backward (memory as without the wrapper);
    a second backward (retain_graph=True) gives the same gradients again."""
    gru = gnn.GRU(I, H, dtype=D)
    x = _x(T, B, I).requires_grad_()
    out, _ = gru(x)
    node = out.grad_fn
    assert node.fast_graph is not None
    (first,) = torch.autograd.grad(out.sum(), x, retain_graph=True, create_graph=create_graph)
    assert node.fast_graph is None
    (second,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(second, first.detach())
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(out.sum(), x)


def test_no_grad_forward_equals_grad_forward() -> None:
    lstm = gnn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=D)
    _randomise(lstm)
    x = _x(T, B, I)
    out, (h, c) = lstm(x)
    with torch.no_grad():
        out_ng, (h_ng, c_ng) = lstm(x)
    for a, b in ((out, out_ng), (h, h_ng), (c, c_ng)):
        torch.testing.assert_close(a.detach(), b)
