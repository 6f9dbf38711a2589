"""gru_repro.nn's torch forms equal torch.nn.GRU / LSTM / RNN loaded with the same state_dict:
outputs, final states and the gradients of the input, hx and every parameter, in float64, for
stacked, bidirectional, batch-first, unbatched and packed (unsorted) input, under both loops."""

from __future__ import annotations

import pytest
import torch
from nn_cases import (  # noqa: F401 (backend: a fixture, used by name)
    TORCH_FORMS,
    D,
    I,
    assert_same,
    backend,
    forward_backward,
    random_state,
    torch_pair,
)

KINDS = list(TORCH_FORMS)
T, B = 5, 3


def _input(batch_first: bool, steps: int = T, batch: int = B, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, steps, I) if batch_first else (steps, batch, I)
    return torch.randn(shape, generator=gen, dtype=D)


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("kind", KINDS)
def test_padded_matches_torch(kind, num_layers, bidirectional, batch_first) -> None:
    options = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first}
    ours, ref = torch_pair(kind, **options)
    x, hx = _input(batch_first), random_state(ref, B)
    assert_same(forward_backward(ours, x, hx), forward_backward(ref, x, hx))


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_matches_torch(kind, bidirectional) -> None:
    ours, ref = torch_pair(kind, num_layers=2, bidirectional=bidirectional)
    x = _input(False)[:, 0]  # (T, I)
    hx = random_state(ref, None)  # (L*D, H)
    result = forward_backward(ours, x, hx)
    assert result[0][0].shape == (T, ours.num_directions * ours.hidden_size)
    assert_same(result, forward_backward(ref, x, hx))


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("layers_bi", [(1, False), (2, True)], ids=["L1uni", "L2bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_packed_unsorted_matches_torch(kind, layers_bi, batch_first) -> None:
    """Unsorted lengths with ties and a length-1 sequence: final states at each sequence's
    own last step, the backward direction starting there; output packed like the input."""
    num_layers, bidirectional = layers_bi
    ours, ref = torch_pair(
        kind, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first
    )
    lengths = torch.tensor([3, 6, 1, 6, 2])
    x, hx = _input(batch_first, steps=6, batch=5), random_state(ref, 5)
    assert_same(forward_backward(ours, x, hx, lengths), forward_backward(ref, x, hx, lengths))


@pytest.mark.parametrize("kind", KINDS)
def test_packed_without_hx_matches_torch(kind) -> None:
    ours, ref = torch_pair(kind, num_layers=2, bidirectional=True)
    lengths = torch.tensor([2, 4, 4, 1])
    x = _input(False, steps=4, batch=4)
    assert_same(forward_backward(ours, x, None, lengths), forward_backward(ref, x, None, lengths))


@pytest.mark.parametrize("kind", KINDS)
def test_without_bias_matches_torch(kind) -> None:
    ours, ref = torch_pair(kind, num_layers=2, bidirectional=True, bias=False)
    assert not any("bias" in name for name, _ in ours.named_parameters())
    x, hx = _input(False), random_state(ref, B)
    assert_same(forward_backward(ours, x, hx), forward_backward(ref, x, hx))


@pytest.mark.parametrize("kind", KINDS)
def test_state_dicts_load_both_ways(kind) -> None:
    """Same keys, shapes and order as torch.nn's; each loads the other's (strict)."""
    ours, ref = torch_pair(kind, num_layers=2, bidirectional=True)
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)
    assert "weight_hh_l1_reverse" in ours_sd
    for name, value in ours_sd.items():
        torch.testing.assert_close(value, ref_sd[name])
    with torch.no_grad():
        for p in ours.parameters():
            p.mul_(2.0)
    ref.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ref.weight_ih_l1_reverse, ours.weight_ih_l1_reverse)


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", KINDS)
def test_gradient_penalty_matches_torch(kind) -> None:
    """Double backward: d/dparams of |d(loss)/dx|^2 equals torch.nn's."""
    ours, ref = torch_pair(kind, num_layers=2, bidirectional=True)
    x0, hx = _input(False), random_state(ref, B)
    results = []
    for module in (ours, ref):
        x = x0.clone().requires_grad_()
        out, _ = module(x, hx)
        (grad_x,) = torch.autograd.grad(out.pow(3).sum(), x, create_graph=True)
        penalty = grad_x.pow(2).sum()
        results.append((grad_x, torch.autograd.grad(penalty, [x, *module.parameters()])))
    (gx_a, second_a), (gx_b, second_b) = results
    torch.testing.assert_close(gx_a, gx_b)
    for a, b in zip(second_a, second_b, strict=True):
        torch.testing.assert_close(a, b)
