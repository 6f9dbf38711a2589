"""The LSTM with diagonal peepholes (Graves 2013, as in the paper), hand-written BPTT.

Gate blocks are stacked in torch.nn's order (i, f, g, o) along dim 0 of the weights, where g is
the paper's candidate cell c~. The equations as plain autograd, step by step, are in
:mod:`gru_repro.models.reference`.
"""

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
    sequence_buffer,
    sequence_copy,
    weight_grads,
)


class LSTMFunction(torch.autograd.Function):
    """The LSTM over a whole sequence; ``peephole`` (3, H) = [V_i; V_f; V_o] or None. See
    :class:`LSTM` for the equations.

    Forward: all steps' input projections in one matmul, then the loop over time
    (``loops.lstm_forward``). Backward: the loop back through time (``loops.lstm_backward``,
    dL/d[a_i, a_f, a_g, a_o] for every step, dL/dc0 and dL/dV), then the weight gradients as
    single matmuls. The loops run in C++ or Python, see :mod:`gru_repro.models.kernels`.
    Also a population's, as TanhRNNFunction (peephole (P, 3, H)).
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias: Tensor,
        peephole: Tensor | None,
    ):
        x = x.contiguous()
        ctx.loops = kernels.loops_for(x)
        hidden = weight_hh.shape[-1]
        gates = input_projection(x, weight_ih, bias)  # (T, B, 4H) -> i, f, g, o in place
        states = gates.shape[:-1] + (hidden,)
        cells = sequence_buffer(x, states)  # (T, B, H) c_t
        tanh_cells = sequence_buffer(x, states)  # (T, B, H) tanh(c_t)
        out = sequence_buffer(x, states)  # (T, B, H) h_t
        w_hh_t = member_weights(weight_hh).mT
        ctx.loops.lstm_forward(gates, h0, c0, w_hh_t, peephole, cells, tanh_cells, out)
        saved = (x, h0, c0, weight_ih, weight_hh, peephole, gates, cells, tanh_cells, out)
        ctx.save_for_backward(*saved)
        return out, out.select(-3, -1).clone(), cells.select(-3, -1).clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor, grad_cn: Tensor):
        x, h0, c0, weight_ih, weight_hh, peephole, gates, cells, tanh_cells, out = ctx.saved_tensors
        grad_hs = sequence_copy(grad_out)  # (T, B, H) dL/dh_t
        grad_hs.select(-3, -1).add_(grad_hn)
        grad_c = grad_cn.clone(memory_format=torch.contiguous_format)  # (B, H) -> dL/dc0
        grad_pre = sequence_buffer(gates, gates.shape)  # (T, B, 4H) <- dL/d[a_i, a_f, a_g, a_o]
        grad_peephole = gates.new_zeros(weight_hh.shape[:-2] + (3, weight_hh.shape[-1]))  # dL/dV
        ctx.loops.lstm_backward(
            grad_hs,
            grad_c,
            gates,
            c0,
            cells,
            tanh_cells,
            peephole,
            member_weights(weight_hh),
            grad_pre,
            grad_peephole,
        )
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * 7
        if needs[0]:
            grads[0] = input_grads(grad_pre, weight_ih)
        grads[1] = first_step_grad(grad_pre, weight_hh) if needs[1] else None
        grads[2] = grad_c if needs[2] else None
        if needs[3]:
            grads[3] = weight_grads(grad_pre, x)
        if needs[4]:
            grads[4] = recurrent_weight_grad(grad_pre, h0, out)
        if needs[5]:
            grads[5] = bias_grad(grad_pre)
        if peephole is not None and needs[6]:
            grads[6] = grad_peephole
        return tuple(grads)


class LSTM(RecurrentLayer):
    """Long short-term memory with diagonal peepholes, as in the paper (Graves 2013)::

        i_t  = sigmoid(W_i x_t + U_i h_{t-1} + V_i * c_{t-1} + b_i)
        f_t  = sigmoid(W_f x_t + U_f h_{t-1} + V_f * c_{t-1} + b_f)
        c~_t = tanh(W_c x_t + U_c h_{t-1} + b_c)
        c_t  = f_t * c_{t-1} + i_t * c~_t
        o_t  = sigmoid(W_o x_t + U_o h_{t-1} + V_o * c_t + b_o)      (the *current* cell)
        h_t  = o_t * tanh(c_t)

    Shapes: x (T, B, I), hx = (h0, c0) each (B, H), or None (zeros) -> out (T, B, H),
    (h_n, c_n) each (B, H).
    Parameters: ``weight_ih`` (4H, I) = [W_i; W_f; W_c; W_o], ``weight_hh`` (4H, H),
    ``bias`` (4H,), ``weight_peephole`` (3, H) = [V_i; V_f; V_o] (absent if ``peephole=False``).
    Init ``paper``: W ~ U(-0.1, 0.1), each H x H block of U orthogonal, biases 0, peepholes 0
    (so training starts from a plain LSTM; the paper does not say); ``torch``: all
    U(-1/sqrt(H), 1/sqrt(H)).

    The same equations in plain autograd, step by step (the reference the tests hold this
    unit to): :func:`gru_repro.models.reference.reference_forward`.

    Differs from torch.nn.LSTM in the peepholes and in one bias per gate (torch.nn's
    ``bias_ih + bias_hh``); with ``peephole=False`` it is torch.nn.LSTM with the biases summed.
    """

    num_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        peephole: bool = True,
        init: str = "paper",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, init=init, device=device, dtype=dtype)
        if not isinstance(peephole, bool):
            raise ValueError(f"LSTM option peephole must be true or false, got {peephole!r}")
        self.peephole = peephole
        factory = {"device": device, "dtype": dtype}
        self.bias = nn.Parameter(torch.empty(4 * hidden_size, **factory))
        if peephole:
            self.weight_peephole = nn.Parameter(torch.empty(3, hidden_size, **factory))
        self.reset_parameters()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", peephole={self.peephole}"

    def forward(
        self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        self._check_input(x)
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("LSTM state must be a pair (h, c) of (B, H) tensors or None")
        h0 = self._initial(x, None if hx is None else hx[0])
        c0 = self._initial(x, None if hx is None else hx[1])
        if x.shape[0] == 0:
            return x.new_empty(0, x.shape[1], self.hidden_size), (h0, c0)
        peephole = self.weight_peephole if self.peephole else None
        out, h_n, c_n = LSTMFunction.apply(
            x, h0, c0, self.weight_ih, self.weight_hh, self.bias, peephole
        )
        return out, (h_n, c_n)
