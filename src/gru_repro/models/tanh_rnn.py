"""The tanh-RNN with a hand-written backward pass through time."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from gru_repro.models import kernels
from gru_repro.models.recurrent import (
    RecurrentLayer,
    bias_grad,
    first_step_grad,
    input_grads,
    input_projection,
    member_weights,
    recurrent_weight_grad,
    sequence_copy,
    weight_grads,
)


class TanhRNNFunction(torch.autograd.Function):
    """h_t = tanh(W x_t + U h_{t-1} + b) over a whole sequence, with BPTT written out.

    The equations as plain autograd: :func:`gru_repro.models.reference.reference_forward`.
    Forward: all steps' input projections in one matmul, then the loop over time
    (``loops.tanh_forward``). Backward: the loop back through time (``loops.tanh_backward``,
    dL/da_t for every step), then the weight gradients as single matmuls. The loops run in C++
    or Python, see :mod:`gru_repro.models.kernels`.

    Also a population's (models/population_fused.py): stacked weights (P, ., .) and h0
    (P, B, H) give out (P, T, B, H), h_n (P, B, H); x (T, B, I) is shared.
    """

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor):
        x = x.contiguous()
        ctx.loops = kernels.loops_for(x)
        out = input_projection(x, weight_ih, bias)  # (T, B, H): W x_t + b, then h_t in place
        ctx.loops.tanh_forward(out, h0, member_weights(weight_hh).mT)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, out)
        return out, out.select(-3, -1).clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor):
        x, h0, weight_ih, weight_hh, out = ctx.saved_tensors
        grad_pre = sequence_copy(grad_out)  # (T, B, H) -> dL/da_t
        ctx.loops.tanh_backward(grad_pre, grad_hn, out, member_weights(weight_hh))
        needs = ctx.needs_input_grad
        grad_x = grad_h0 = grad_w_ih = grad_w_hh = grad_b = None
        if needs[0]:
            grad_x = input_grads(grad_pre, weight_ih)
        if needs[1]:
            grad_h0 = first_step_grad(grad_pre, weight_hh)
        if needs[2]:
            grad_w_ih = weight_grads(grad_pre, x)
        if needs[3]:
            grad_w_hh = recurrent_weight_grad(grad_pre, h0, out)
        if needs[4]:
            grad_b = bias_grad(grad_pre)
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b


class TanhRNN(RecurrentLayer):
    """Elman RNN with tanh, the paper's baseline unit.

    Equation: ``h_t = tanh(W x_t + U h_{t-1} + b)``.

    Shapes: x (T, B, I), hx (B, H) or None (zeros) -> out (T, B, H), h_n (B, H).
    Parameters: ``weight_ih`` (H, I) = W, ``weight_hh`` (H, H) = U, ``bias`` (H,) = b.
    Init ``paper``: W ~ U(-0.1, 0.1), U orthogonal, b = 0; ``torch``: all U(-1/sqrt(H), 1/sqrt(H)).

    The same equations in plain autograd, step by step (the reference the tests hold this
    unit to): :func:`gru_repro.models.reference.reference_forward`.

    Differs from ``torch.nn.RNN(nonlinearity="tanh")`` only in having one bias instead of
    ``bias_ih + bias_hh`` (their sum), and in taking hx as (B, H) rather than (1, B, H).
    """

    num_gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        init: str = "paper",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, init=init, device=device, dtype=dtype)
        self.bias = nn.Parameter(torch.empty(hidden_size, device=device, dtype=dtype))
        self.reset_parameters()

    def forward(self, x: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check_input(x)
        h0 = self._initial(x, hx)
        if x.shape[0] == 0:
            return x.new_empty(0, x.shape[1], self.hidden_size), h0
        return TanhRNNFunction.apply(x, h0, self.weight_ih, self.weight_hh, self.bias)
