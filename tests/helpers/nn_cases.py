"""Shared helpers of the gru_repro.nn tests: torch.nn twins with copied weights, and one
forward + backward with random cotangents that returns every output and gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import gru_repro.nn as gnn
from gru_repro.models import kernels

D = torch.float64
I, H = 3, 4  # noqa: E741 (torch.nn names: input, hidden)

# kind -> (our class, torch.nn class, our options for torch.nn's form)
TORCH_FORMS = {
    "gru": (gnn.GRU, nn.GRU, {"reset_after": True}),
    "lstm": (gnn.LSTM, nn.LSTM, {"peephole": False}),
    "rnn": (gnn.RNN, nn.RNN, {}),
}
BACKENDS = ["python", pytest.param("cpp", marks=pytest.mark.cpp)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test under the Python loops and under the C++ loops (built; error if not)."""
    if request.param == "cpp":
        request.getfixturevalue("cpp_loops")
    with kernels.use_backend(request.param):
        yield request.param


def torch_pair(kind: str, seed: int = 0, **options):
    """(ours, torch.nn's) of torch.nn's form, ours loaded from torch.nn's state_dict."""
    ours_cls, ref_cls, form = TORCH_FORMS[kind]
    torch.manual_seed(seed)
    ref = ref_cls(I, H, dtype=D, **options)
    ours = ours_cls(I, H, dtype=D, **form, **options)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def random_state(module, batch: int | None, seed: int = 2):
    """hx for ``module``: (L*D, B, H) each, (L*D, H) when batch is None; a pair for LSTM."""
    gen = torch.Generator().manual_seed(seed)
    stacks = module.num_layers * (2 if module.bidirectional else 1)
    shape = (stacks, module.hidden_size) if batch is None else (stacks, batch, module.hidden_size)
    parts = [torch.randn(shape, generator=gen, dtype=D) for _ in range(2)]
    return tuple(parts) if isinstance(module, (nn.LSTM, gnn.LSTM)) else parts[0]


def forward_backward(module, x, hx=None, lengths=None):
    """Forward (packed when ``lengths`` is given, unsorted) and backward of a random linear
    function of every output. Returns (outputs, gradients by name): outputs are the output
    (packed: its data, batch_sizes, sorted and unsorted indices) and the final states;
    gradients cover the input, hx and every parameter."""
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    if hx is not None:
        hx = (
            tuple(h.clone().requires_grad_() for h in hx)
            if isinstance(hx, tuple)
            else (hx.clone().requires_grad_())
        )
    inp = x
    if lengths is not None:
        inp = pack_padded_sequence(x, lengths, batch_first=module.batch_first, enforce_sorted=False)
    out, final = module(inp, hx)
    outputs = [out.data] if isinstance(out, PackedSequence) else [out]
    finals = list(final) if isinstance(final, tuple) else [final]
    gen = torch.Generator().manual_seed(5)
    loss = sum((t * torch.randn(t.shape, generator=gen, dtype=D)).sum() for t in outputs + finals)
    loss.backward()
    if isinstance(out, PackedSequence):
        outputs += [out.batch_sizes, out.sorted_indices, out.unsorted_indices]
    grads = {"input": x.grad}
    states = hx if isinstance(hx, tuple) else (() if hx is None else (hx,))
    grads.update({f"hx{k}": h.grad for k, h in enumerate(states)})
    grads.update({name: p.grad for name, p in module.named_parameters()})
    return outputs + finals, grads


def assert_same(ours, ref) -> None:
    """Outputs and gradients of two forward_backward calls agree, gradient names included."""
    (outs_a, grads_a), (outs_b, grads_b) = ours, ref
    assert len(outs_a) == len(outs_b)
    for a, b in zip(outs_a, outs_b, strict=True):
        torch.testing.assert_close(a, b)
    assert grads_a.keys() == grads_b.keys()
    for name, grad in grads_a.items():
        assert grad is not None and grads_b[name] is not None, name
        torch.testing.assert_close(grad, grads_b[name], msg=lambda m, n=name: f"{n}: {m}")
