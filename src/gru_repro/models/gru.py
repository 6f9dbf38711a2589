"""The GRU in the paper's form (reset before the recurrent product) and in torch.nn's form.

Gate blocks are stacked in torch.nn's order (r, z, n) along dim 0 of the weights. Both forms
have a hand-written backward pass through time; their equations as plain autograd, step by
step, are in :mod:`gru_repro.models.reference`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from gru_repro.models import kernels
from gru_repro.models.recurrent import (
    RecurrentLayer,
    bias_grad,
    input_grads,
    input_projection,
    member_weights,
    recurrent_weight_grad,
    sequence_buffer,
    weight_grads,
)


class PaperGRUFunction(torch.autograd.Function):
    """The paper's GRU over a whole sequence; see :class:`GRU` for the equations.

    Forward: all steps' input projections in one matmul, then the loop over time
    (``loops.paper_gru_forward``). Backward: the loop back through time
    (``loops.paper_gru_backward``, dL/d[a_r, a_z, a_n] for every step and dL/dh0), then the
    weight gradients as single matmuls. The loops run in C++ or Python, see
    :mod:`gru_repro.models.kernels`. Also a population's, as TanhRNNFunction.
    """

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor):
        x = x.contiguous()
        ctx.loops = kernels.loops_for(x)
        hidden = weight_hh.shape[-1]
        gates = input_projection(x, weight_ih, bias)  # (T, B, 3H) -> r, z, h~ in place
        states = gates.shape[:-1] + (hidden,)
        reset_h = sequence_buffer(x, states)  # (T, B, H) r_t * h_{t-1}
        out = sequence_buffer(x, states)  # (T, B, H) h_t
        aligned = member_weights(weight_hh)
        u_rz_t = aligned[..., : 2 * hidden, :].mT
        u_n_t = aligned[..., 2 * hidden :, :].mT
        ctx.loops.paper_gru_forward(gates, h0, u_rz_t, u_n_t, reset_h, out)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, gates, reset_h, out)
        return out, out.select(-3, -1).clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor):
        x, h0, weight_ih, weight_hh, gates, reset_h, out = ctx.saved_tensors
        hidden = weight_hh.shape[-1]
        grad_pre = sequence_buffer(gates, gates.shape)  # (T, B, 3H) <- dL/d[a_r, a_z, a_n]
        aligned = member_weights(weight_hh)
        grad_h0 = ctx.loops.paper_gru_backward(
            grad_out.contiguous(),
            grad_out.select(-3, -1) + grad_hn,  # dL/dh_{T-1}
            gates,
            h0,
            out,
            aligned[..., : 2 * hidden, :],
            aligned[..., 2 * hidden :, :],
            grad_pre,
        )
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * 5
        if needs[0]:
            grads[0] = input_grads(grad_pre, weight_ih)
        if needs[1]:
            grads[1] = grad_h0
        if needs[2]:
            grads[2] = weight_grads(grad_pre, x)
        if needs[3]:
            grads[3] = torch.cat(
                [
                    recurrent_weight_grad(grad_pre[..., : 2 * hidden], h0, out),
                    weight_grads(grad_pre[..., 2 * hidden :], reset_h),
                ],
                dim=-2,
            )
        if needs[4]:
            grads[4] = bias_grad(grad_pre)
        return tuple(grads)


class ResetAfterGRUFunction(torch.autograd.Function):
    """torch.nn.GRU's equations over a whole sequence; see :class:`GRU` for them.

    Forward: input projections, then ``loops.reset_after_gru_forward`` (it keeps U h_{t-1} +
    b_hh of every step for the backward). Backward: ``loops.reset_after_gru_backward`` (dL/d of
    both products and of n's pre-activation), then the weight gradients as single matmuls.
    The loops run in C++ or Python, see :mod:`gru_repro.models.kernels`.
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        h0: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
    ):
        x = x.contiguous()
        ctx.loops = kernels.loops_for(x)
        hidden = weight_hh.shape[-1]
        gates = input_projection(x, weight_ih, bias_ih)  # (T, B, 3H) -> r, z, n in place
        recur = sequence_buffer(gates, gates.shape)  # (T, B, 3H) U h_{t-1} + b_hh
        out = sequence_buffer(x, gates.shape[:-1] + (hidden,))  # (T, B, H) h_t
        w_hh_t = member_weights(weight_hh).mT
        ctx.loops.reset_after_gru_forward(gates, h0, w_hh_t, bias_hh, recur, out)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, gates, recur, out)
        return out, out.select(-3, -1).clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor):
        x, h0, weight_ih, weight_hh, gates, recur, out = ctx.saved_tensors
        hidden = weight_hh.shape[-1]
        grad_recur = sequence_buffer(gates, gates.shape)  # (T, B, 3H) <- dL/d(U h + b_hh)
        grad_n = sequence_buffer(out, out.shape)  # (T, B, H) <- dL/d(pre-activation of n)
        grad_h0 = ctx.loops.reset_after_gru_backward(
            grad_out.contiguous(),
            grad_out.select(-3, -1) + grad_hn,  # dL/dh_{T-1}
            gates,
            recur,
            h0,
            out,
            member_weights(weight_hh),
            grad_recur,
            grad_n,
        )
        if grad_recur.dim() == 4:  # members: an aligned buffer, see recurrent.py
            grad_in = sequence_buffer(grad_recur, grad_recur.shape)
            grad_in[..., : 2 * hidden].copy_(grad_recur[..., : 2 * hidden])
            grad_in[..., 2 * hidden :].copy_(grad_n)
        else:
            grad_in = torch.cat([grad_recur[..., : 2 * hidden], grad_n], dim=-1)  # (T, B, 3H)
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * 6
        if needs[0]:
            grads[0] = input_grads(grad_in, weight_ih)
        if needs[1]:
            grads[1] = grad_h0
        if needs[2]:
            grads[2] = weight_grads(grad_in, x)
        if needs[3]:
            grads[3] = recurrent_weight_grad(grad_recur, h0, out)
        if needs[4]:
            grads[4] = bias_grad(grad_in)
        if needs[5]:
            grads[5] = bias_grad(grad_recur)
        return tuple(grads)


class GRU(RecurrentLayer):
    """Gated recurrent unit; the paper's form by default (Cho et al. 2014)::

        r_t  = sigmoid(W_r x_t + U_r h_{t-1} + b_r)
        z_t  = sigmoid(W_z x_t + U_z h_{t-1} + b_z)
        h~_t = tanh(W x_t + U (r_t * h_{t-1}) + b)
        h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

    With ``reset_after=True`` it is exactly ``torch.nn.GRU`` (the cuDNN form)::

        n_t = tanh(W_n x_t + b_in + r_t * (U_n h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    with two biases per gate (``bias_ih``, ``bias_hh``): torch.nn.GRU's ``weight_ih_l0``,
    ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0`` are these four parameters unchanged (copy
    them, or drop the ``_l0`` from the keys; :class:`gru_repro.nn.GRU` with ``reset_after=True``
    loads a torch.nn.GRU state_dict as it is). Note its z plays the role of the paper's 1 - z.

    Shapes: x (T, B, I), hx (B, H) or None (zeros) -> out (T, B, H), h_n (B, H).
    Parameters: ``weight_ih`` (3H, I) = [W_r; W_z; W], ``weight_hh`` (3H, H) = [U_r; U_z; U],
    ``bias`` (3H,) (paper form) or ``bias_ih``, ``bias_hh`` (3H,) each (reset_after).
    Init ``paper``: W ~ U(-0.1, 0.1), each H x H block of U orthogonal, biases 0; ``torch``:
    all U(-1/sqrt(H), 1/sqrt(H)).

    The same equations in plain autograd, step by step (the reference the tests hold this
    unit to): :func:`gru_repro.models.reference.reference_forward`.

    The paper's form differs from torch.nn.GRU in resetting h before the product with U, in
    having one bias per gate, and in which of z, 1 - z keeps the old state.
    """

    num_gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        reset_after: bool = False,
        init: str = "paper",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, init=init, device=device, dtype=dtype)
        if not isinstance(reset_after, bool):
            raise ValueError(f"GRU option reset_after must be true or false, got {reset_after!r}")
        self.reset_after = reset_after
        shape = (3 * hidden_size,)
        if reset_after:
            self.bias_ih = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            self.bias_hh = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        else:
            self.bias = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.reset_parameters()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset_after={self.reset_after}"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check_input(x)
        h0 = self._initial(x, hx)
        if x.shape[0] == 0:
            return x.new_empty(0, x.shape[1], self.hidden_size), h0
        if self.reset_after:
            return ResetAfterGRUFunction.apply(
                x, h0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
            )
        return PaperGRUFunction.apply(x, h0, self.weight_ih, self.weight_hh, self.bias)
