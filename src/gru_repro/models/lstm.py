"""The LSTM with diagonal peepholes (Graves 2013, as in the paper), hand-written BPTT.

Gate blocks are stacked in torch.nn's order (i, f, g, o) along dim 0 of the weights, where g is
the paper's candidate cell c~.
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


class LSTMFunction(torch.autograd.Function):
    """The LSTM over a whole sequence; ``peephole`` (3, H) = [V_i; V_f; V_o] or None.

    Forward per step: one ``addmm_`` for all four gates' recurrent input, then nine
    elementwise ops (seven without peepholes). Backward: every elementwise factor is computed
    for all steps before the loop, with the peephole paths folded into them, so each step is
    3 ``mul``, 1 ``addcmul_``, 1 ``addmm_``. Per-step views are made once with ``unbind``.

    The loops run in C++ (``csrc/loops.cpp``) or in Python as described here, see
    :mod:`gru_repro.models.kernels`; the C++ backward computes the factors inside its loop.
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
        steps, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        gates = input_projection(x, weight_ih, bias)  # (T, B, 4H) -> i, f, g, o in place
        cells = x.new_empty(steps, batch, hidden)  # (T, B, H) c_t
        tanh_cells = x.new_empty(steps, batch, hidden)  # (T, B, H) tanh(c_t)
        out = x.new_empty(steps, batch, hidden)  # (T, B, H) h_t
        w_hh_t = weight_hh.t()
        cpp = kernels.loops_for(x)
        if cpp is not None:
            cpp.lstm_forward(gates, h0, c0, w_hh_t, peephole, cells, tanh_cells, out)
            ctx.save_for_backward(
                x, h0, c0, weight_ih, weight_hh, peephole, gates, cells, tanh_cells, out
            )
            return out, out[-1].clone(), cells[-1].clone()
        a_steps = gates.unbind(0)
        if_steps = gates[..., : 2 * hidden].view(steps, batch, 2, hidden).unbind(0)
        i_steps, f_steps, g_steps, o_steps = (a.unbind(0) for a in gates.split(hidden, dim=-1))
        c_steps, c3_steps = cells.unbind(0), cells.unsqueeze(2).unbind(0)  # (B, H), (B, 1, H)
        tc_steps, h_steps = tanh_cells.unbind(0), out.unbind(0)
        v_if = v_o = None
        if peephole is not None:
            v_if, v_o = peephole[:2], peephole[2]  # (2, H), (H,)
        h, c, c3 = h0, c0, c0.unsqueeze(1)
        for t in range(steps):
            a_steps[t].addmm_(h, w_hh_t)
            if v_if is not None:
                if_steps[t].addcmul_(v_if, c3)  # V_i * c_{t-1}, V_f * c_{t-1}
            if_steps[t].sigmoid_()
            g_steps[t].tanh_()
            c = torch.mul(f_steps[t], c, out=c_steps[t]).addcmul_(i_steps[t], g_steps[t])
            if v_o is not None:
                o_steps[t].addcmul_(v_o, c)  # V_o * c_t
            o_steps[t].sigmoid_()
            h = torch.mul(o_steps[t], torch.tanh(c, out=tc_steps[t]), out=h_steps[t])
            c3 = c3_steps[t]
        ctx.save_for_backward(
            x, h0, c0, weight_ih, weight_hh, peephole, gates, cells, tanh_cells, out
        )
        return out, h.clone(), c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor, grad_cn: Tensor):
        saved = ctx.saved_tensors
        x, h0, c0, weight_ih, weight_hh, peephole, gates, cells, tanh_cells, out = saved
        steps, batch, _ = x.shape
        hidden = weight_hh.shape[1]
        grad_pre = torch.empty_like(gates)  # (T, B, 4H)
        # dL/dh_t accumulates in place in a copy of grad_out (in-place addmm_ is cheaper).
        grad_hs = grad_out.clone(memory_format=torch.contiguous_format)  # (T, B, H)
        grad_hs[-1] += grad_hn
        grad_c = grad_cn.clone(memory_format=torch.contiguous_format)  # (B, H), updated in place
        grad_peephole = None
        cpp = kernels.loops_for(x)
        if cpp is not None:  # the same loop, with the factors below computed inside it
            grad_peephole = gates.new_zeros(3, hidden)  # accumulated there even when unused
            cpp.lstm_backward(
                grad_hs,
                grad_c,
                gates,
                c0,
                cells,
                tanh_cells,
                peephole,
                weight_hh,
                grad_pre,
                grad_peephole,
            )
        else:
            i, f, g, o = gates.split(hidden, dim=-1)
            c_prev = previous_states(c0, cells)  # (T, B, H) c_{t-1}
            # Elementwise factors for every step, so the loop only multiplies and accumulates:
            #   dL/da_o = dh * k_o;  dL/dc_t = carried + dh * k_c  (incl. the V_o path);
            #   dL/da_{i,f,g} = dc * k_ifg;  carried to c_{t-1}: dc * k_keep  (incl. V_i, V_f).
            k_o = tanh_cells * o * (1.0 - o)
            k_c = o * (1.0 - tanh_cells * tanh_cells)
            k_ifg = torch.stack(  # (T, B, 3, H)
                [g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g)], dim=2
            )
            k_keep = f
            if peephole is not None:
                k_c = k_c.addcmul_(k_o, peephole[2])
                k_keep = f + k_ifg[:, :, 0] * peephole[0] + k_ifg[:, :, 1] * peephole[1]
            _lstm_backward_loop(grad_hs, grad_c, k_o, k_c, k_ifg, k_keep, weight_hh, grad_pre)
            if peephole is not None and ctx.needs_input_grad[6]:
                gi, gf, _, go = grad_pre.split(hidden, dim=-1)
                grad_peephole = torch.stack(
                    [(gi * c_prev).sum((0, 1)), (gf * c_prev).sum((0, 1)), (go * cells).sum((0, 1))]
                )
        needs = ctx.needs_input_grad
        grads: list[Tensor | None] = [None] * 7
        if needs[0]:
            grads[0] = input_grads(grad_pre, weight_ih)
        grads[1] = grad_pre[0].mm(weight_hh) if needs[1] else None
        grads[2] = grad_c if needs[2] else None
        if needs[3]:
            grads[3] = weight_grads(grad_pre, x)
        if needs[4]:
            grads[4] = recurrent_weight_grad(grad_pre, h0, out)
        if needs[5]:
            grads[5] = grad_pre.sum((0, 1))
        if peephole is not None and needs[6]:
            grads[6] = grad_peephole
        return tuple(grads)


def _lstm_backward_loop(
    grad_hs: Tensor,
    grad_c: Tensor,
    k_o: Tensor,
    k_c: Tensor,
    k_ifg: Tensor,
    k_keep: Tensor,
    weight_hh: Tensor,
    grad_pre: Tensor,
) -> None:
    """The LSTM's backward loop in Python; same contract as ``lstm_backward`` in loops.cpp.

    grad_hs (T, B, H): dL/dh_t from above, completed in place; grad_c (B, H): dL/dc_{T-1} in,
    dL/dc0 out; k_o, k_c, k_keep (T, B, H); k_ifg (T, B, 3, H); weight_hh (4H, H);
    grad_pre (T, B, 4H) <- dL/d[a_i, a_f, a_g, a_o].
    """
    steps, batch, hidden = grad_hs.shape
    g_steps = grad_pre.unbind(0)
    g_o = grad_pre[..., 3 * hidden :].unbind(0)
    g_ifg = grad_pre[..., : 3 * hidden].view(steps, batch, 3, hidden).unbind(0)
    k_o, k_c, k_ifg, k_keep = (k.unbind(0) for k in (k_o, k_c, k_ifg, k_keep))
    grad_h_steps = grad_hs.unbind(0)
    grad_c3 = grad_c.unsqueeze(1)  # (B, 1, H) view of it, broadcasts against k_ifg
    for t in range(steps - 1, -1, -1):
        grad_h = grad_h_steps[t]
        torch.mul(grad_h, k_o[t], out=g_o[t])
        grad_c.addcmul_(grad_h, k_c[t])
        torch.mul(grad_c3, k_ifg[t], out=g_ifg[t])
        grad_c.mul_(k_keep[t])
        if t > 0:
            grad_h_steps[t - 1].addmm_(g_steps[t], weight_hh)


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
