"""The GRU in the paper's form (reset before the recurrent product) and in torch.nn's form.

Gate blocks are stacked in torch.nn's order (r, z, n) along dim 0 of the weights. Both forms
have a hand-written backward pass through time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from gru_repro.models import kernels
from gru_repro.models.recurrent import (
    RecurrentLayer,
    input_grads,
    input_projection,
    previous_states,
    recurrent_weight_grad,
    weight_grads,
)


class PaperGRUFunction(torch.autograd.Function):
    """The paper's GRU over a whole sequence; see :class:`GRU` for the equations.

    Forward per step: ``addmm_ + sigmoid_`` (r, z), ``mul`` (r*h), ``addmm_ + tanh_`` (h~),
    ``lerp`` (h). Every elementwise factor the backward needs is computed for all steps at once
    before its loop, which then costs 2 ``mul``, 1 ``mm``, 2 ``addcmul``, 1 ``addmm`` per step.
    Per-step views are made once with ``unbind`` (slicing inside the loop is not free).

    The loops run in C++ (``csrc/loops.cpp``) or in Python as described here, see
    :mod:`gru_repro.models.kernels`; the C++ backward computes the factors inside its loop.
    """

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor):
        x = x.contiguous()
        steps, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        gates = input_projection(x, weight_ih, bias)  # (T, B, 3H) -> r, z, h~ in place
        out = x.new_empty(steps, batch, hidden)  # (T, B, H) h_t
        reset_h = x.new_empty(steps, batch, hidden)  # (T, B, H) r_t * h_{t-1}
        u_rz_t = weight_hh[: 2 * hidden].t()
        u_n_t = weight_hh[2 * hidden :].t()
        cpp = kernels.loops_for(x)
        if cpp is not None:
            cpp.paper_gru_forward(gates, h0, u_rz_t, u_n_t, reset_h, out)
        else:
            rz_steps = gates[..., : 2 * hidden].unbind(0)
            r_steps, z_steps, cand_steps = (g.unbind(0) for g in gates.split(hidden, dim=-1))
            h = h0
            for rz, r, z, cand, rh, h_new in zip(
                rz_steps,
                r_steps,
                z_steps,
                cand_steps,
                reset_h.unbind(0),
                out.unbind(0),
                strict=True,
            ):
                rz.addmm_(h, u_rz_t).sigmoid_()
                torch.mul(r, h, out=rh)
                cand.addmm_(rh, u_n_t).tanh_()
                h = torch.lerp(h, cand, z, out=h_new)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, gates, reset_h, out)
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor):
        x, h0, weight_ih, weight_hh, gates, reset_h, out = ctx.saved_tensors
        steps, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        u_rz = weight_hh[: 2 * hidden]
        u_n = weight_hh[2 * hidden :]
        grad_pre = torch.empty_like(gates)  # (T, B, 3H) = [a_r, a_z, a_n] gradients
        grad_h = grad_out[-1] + grad_hn  # dL/dh_{T-1}
        cpp = kernels.loops_for(x)
        if cpp is not None:  # the same loop, with the factors below computed inside it
            grad_h = cpp.paper_gru_backward(
                grad_out.contiguous(), grad_h, gates, h0, out, u_rz, u_n, grad_pre
            )
        else:
            r, z, cand = gates.split(hidden, dim=-1)
            prev = previous_states(h0, out)
            # dL/d(pre-activations) = dL/dh_t times these factors, for all steps at once
            # (k_r multiplies dL/d(r * h) instead).
            keep = 1.0 - z
            k_zn = gates.new_empty(steps, batch, 2, hidden)
            torch.sub(cand, prev, out=k_zn[:, :, 0]).mul_(z).mul_(keep)  # (h~ - h) z (1 - z)
            torch.addcmul(z, z, cand * cand, value=-1.0, out=k_zn[:, :, 1])  # z (1 - h~^2)
            k_r = torch.addcmul(r, r, r, value=-1.0).mul_(prev)  # r (1 - r) h_{t-1}
            grad_h = _paper_gru_backward_loop(
                grad_out, grad_h, k_zn, k_r, keep, r, u_rz, u_n, grad_pre
            )
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * 5
        if needs[0]:
            grads[0] = input_grads(grad_pre, weight_ih)
        if needs[1]:
            grads[1] = grad_h
        if needs[2]:
            grads[2] = weight_grads(grad_pre, x)
        if needs[3]:
            grads[3] = torch.cat(
                [
                    recurrent_weight_grad(grad_pre[..., : 2 * hidden], h0, out),
                    weight_grads(grad_pre[..., 2 * hidden :], reset_h),
                ]
            )
        if needs[4]:
            grads[4] = grad_pre.sum((0, 1))
        return tuple(grads)


def _paper_gru_backward_loop(
    grad_out: Tensor,
    grad_h: Tensor,
    k_zn: Tensor,
    k_r: Tensor,
    keep: Tensor,
    r: Tensor,
    u_rz: Tensor,
    u_n: Tensor,
    grad_pre: Tensor,
) -> Tensor:
    """The paper GRU's backward loop in Python; same contract as ``paper_gru_backward`` in
    loops.cpp: fills grad_pre (T, B, 3H) and returns dL/dh0 (B, H). grad_h (B, H) = dL/dh_{T-1};
    k_zn (T, B, 2, H); k_r, keep, r (T, B, H); u_rz (2H, H); u_n (H, H)."""
    steps, batch, hidden = grad_out.shape
    g_r, g_rz = grad_pre[..., :hidden].unbind(0), grad_pre[..., : 2 * hidden].unbind(0)
    g_n = grad_pre[..., 2 * hidden :].unbind(0)
    g_zn = grad_pre[..., hidden:].view(steps, batch, 2, hidden).unbind(0)
    k_zn, k_r, keep, r = k_zn.unbind(0), k_r.unbind(0), keep.unbind(0), r.unbind(0)
    carry = grad_out.unbind(0)
    # Two (B, H) buffers take turns holding dL/dh_t; a (B, 1, H) view of each broadcasts
    # against the stacked (z, n) factors.
    grad_next = torch.empty_like(grad_h)
    grad_h3, grad_next3 = grad_h.unsqueeze(1), grad_next.unsqueeze(1)
    grad_reset_h = torch.empty_like(grad_h)  # (B, H) dL/d(r_t * h_{t-1})
    for t in range(steps - 1, -1, -1):
        torch.mul(grad_h3, k_zn[t], out=g_zn[t])
        torch.mm(g_n[t], u_n, out=grad_reset_h)
        torch.mul(grad_reset_h, k_r[t], out=g_r[t])
        if t > 0:
            torch.addcmul(carry[t - 1], grad_h, keep[t], out=grad_next)
        else:
            torch.mul(grad_h, keep[t], out=grad_next)
        grad_next.addcmul_(grad_reset_h, r[t]).addmm_(g_rz[t], u_rz)
        grad_h, grad_next, grad_h3, grad_next3 = grad_next, grad_h, grad_next3, grad_h3
    return grad_h


class ResetAfterGRUFunction(torch.autograd.Function):
    """torch.nn.GRU's equations over a whole sequence; see :class:`GRU` for them.

    Forward per step: ``addmm`` (U h + b_h), ``add_ + sigmoid_`` (r, z), ``addcmul_ + tanh_``
    (n), ``lerp`` (h). Backward per step: 3 ``mul``, 1 ``addcmul``, 1 ``addmm_``.

    The loops run in C++ (``csrc/loops.cpp``) or in Python as described here, see
    :mod:`gru_repro.models.kernels`; the C++ backward computes the factors inside its loop.
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
        steps, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        gates = input_projection(x, weight_ih, bias_ih)  # (T, B, 3H) -> r, z, n in place
        recur = x.new_empty(steps, batch, 3 * hidden)  # (T, B, 3H) U h_{t-1} + b_h
        out = x.new_empty(steps, batch, hidden)
        w_hh_t = weight_hh.t()
        cpp = kernels.loops_for(x)
        if cpp is not None:
            cpp.reset_after_gru_forward(gates, h0, w_hh_t, bias_hh, recur, out)
        else:
            rz_steps = gates[..., : 2 * hidden].unbind(0)
            rec_rz = recur[..., : 2 * hidden].unbind(0)
            r_steps, z_steps, n_steps = (g.unbind(0) for g in gates.split(hidden, dim=-1))
            rec_n = recur[..., 2 * hidden :].unbind(0)
            h = h0
            for t, (rec, h_new) in enumerate(zip(recur.unbind(0), out.unbind(0), strict=True)):
                torch.addmm(bias_hh, h, w_hh_t, out=rec)
                rz_steps[t].add_(rec_rz[t]).sigmoid_()
                n_steps[t].addcmul_(r_steps[t], rec_n[t]).tanh_()
                h = torch.lerp(n_steps[t], h, z_steps[t], out=h_new)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, gates, recur, out)
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor):
        x, h0, weight_ih, weight_hh, gates, recur, out = ctx.saved_tensors
        steps, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        grad_recur = torch.empty_like(gates)  # (T, B, 3H): dL/d(U h + b_h)
        grad_n = torch.empty_like(out)  # (T, B, H): dL/d(pre-activation of n)
        grad_h = grad_out[-1] + grad_hn  # dL/dh_{T-1}
        cpp = kernels.loops_for(x)
        if cpp is not None:  # the same loop, with the factors below computed inside it
            grad_h = cpp.reset_after_gru_backward(
                grad_out.contiguous(), grad_h, gates, recur, h0, out, weight_hh, grad_recur, grad_n
            )
        else:
            r, z, n = gates.split(hidden, dim=-1)
            prev = previous_states(h0, out)
            k_n = (1.0 - z) * (1.0 - n * n)
            k_z = (prev - n) * z * (1.0 - z)
            # dL/d(U_r h + b_hr) = da_n * k_r and dL/d(U_n h + b_hn) = da_n * r, as one
            # (B, 2, H) op
            k_rn = torch.stack([recur[..., 2 * hidden :] * r * (1.0 - r), r], dim=2)
            g_rec = grad_recur.unbind(0)
            g_rec_z = grad_recur[..., hidden : 2 * hidden].unbind(0)
            g_rec_rn = grad_recur.view(steps, batch, 3, hidden)[:, :, ::2].unbind(0)
            g_n, g_n3 = grad_n.unbind(0), grad_n.unsqueeze(2).unbind(0)
            z_steps, carry = z.unbind(0), grad_out.unbind(0)
            k_n, k_z, k_rn = k_n.unbind(0), k_z.unbind(0), k_rn.unbind(0)
            grad_next = torch.empty_like(grad_hn)
            for t in range(steps - 1, -1, -1):
                torch.mul(grad_h, k_n[t], out=g_n[t])
                torch.mul(grad_h, k_z[t], out=g_rec_z[t])
                torch.mul(g_n3[t], k_rn[t], out=g_rec_rn[t])
                if t > 0:
                    torch.addcmul(carry[t - 1], grad_h, z_steps[t], out=grad_next)
                else:
                    torch.mul(grad_h, z_steps[t], out=grad_next)
                grad_next.addmm_(g_rec[t], weight_hh)
                grad_h, grad_next = grad_next, grad_h
        grad_in = torch.cat([grad_recur[..., : 2 * hidden], grad_n], dim=-1)  # (T, B, 3H)
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * 6
        if needs[0]:
            grads[0] = input_grads(grad_in, weight_ih)
        if needs[1]:
            grads[1] = grad_h
        if needs[2]:
            grads[2] = weight_grads(grad_in, x)
        if needs[3]:
            grads[3] = recurrent_weight_grad(grad_recur, h0, out)
        if needs[4]:
            grads[4] = grad_in.sum((0, 1))
        if needs[5]:
            grads[5] = grad_recur.sum((0, 1))
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
