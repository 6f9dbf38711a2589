"""Small random cases of every unit variant with a hand-written loop, shared by the tests of
the C++ loops (test_kernels.py) and of their recurrent product (test_recurrent_matmul.py)."""

from __future__ import annotations

import torch

from gru_repro.models import GRU, LSTM, TanhRNN, kernels

D = torch.float64
# name -> (layer class, options); every unit variant with a hand-written loop.
VARIANTS = {
    "tanh": (TanhRNN, {}),
    "gru": (GRU, {}),
    "gru_reset_after": (GRU, {"reset_after": True}),
    "lstm": (LSTM, {}),
    "lstm_no_peephole": (LSTM, {"peephole": False}),
}


def random_layer(name: str, input_size: int, hidden: int, dtype=D, seed: int = 0):
    cls, options = VARIANTS[name]
    layer = cls(input_size, hidden, dtype=dtype, **options)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # nonzero everything, peepholes and biases included
        for p in layer.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=dtype) - 0.5)
    return layer


def run_unit(layer, x, state, weights, backend: str):
    """Forward and backward under ``backend``: outputs, then gradients of input, state, params."""
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    with kernels.use_backend(backend):
        out, final = layer(x, state if isinstance(layer, LSTM) else state[0])
        finals = tuple(final) if isinstance(layer, LSTM) else (final,)
        loss = (out * weights[0]).sum() + sum(
            (f * w).sum() for f, w in zip(finals, weights[1:], strict=False)
        )
        loss.backward()
    outputs = [out.detach(), *(f.detach() for f in finals)]
    grads = [x.grad, *(s.grad for s in state)] + [p.grad for p in layer.parameters()]
    return outputs, grads


def make_case(name: str, size, dtype=D, seed: int = 0, scale: float = 1.0):
    steps, batch, input_size, hidden = size
    layer = random_layer(name, input_size, hidden, dtype=dtype, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    x = rand(steps, batch, input_size) * scale
    n_states = 2 if isinstance(layer, LSTM) else 1
    state = tuple(rand(batch, hidden) for _ in range(n_states))
    weights = (rand(steps, batch, hidden), *(rand(batch, hidden) for _ in range(n_states)))
    return layer, x, state, weights
