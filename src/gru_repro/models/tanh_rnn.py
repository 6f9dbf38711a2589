"""The tanh-RNN with a hand-written backward pass through time."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from gru_repro.models import kernels
from gru_repro.models.recurrent import (
    RecurrentLayer,
    input_grads,
    recurrent_weight_grad,
    weight_grads,
)


class TanhRNNFunction(torch.autograd.Function):
    """h_t = tanh(W x_t + U h_{t-1} + b) over a whole sequence, with BPTT written out.

    Forward: ``tanh`` costs about five times ``sigmoid`` on CPU (torch 2.x, AVX-512), so the
    loop runs on s_t = (h_t + 1) / 2 = sigmoid(2 a_t) instead, with the affine map folded into
    the weights: 2 a_t = [2 (W x_t + b - U 1)] + 4 U s_{t-1}. The bracket is one matmul for
    all steps; each step is one ``addmm_`` and one ``sigmoid_`` in place in the (T, B, H) buffer
    that becomes the output, and h = 2 s - 1 is one pass after the loop. Backward: per step
    one ``addmm_`` and one ``mul_``; the weight gradients are single matmuls after the loop.
    The two loops run in C++ or Python, see :mod:`gru_repro.models.kernels`.
    """

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor):
        x = x.contiguous()
        steps, batch, _ = x.shape
        shifted_bias = (bias - weight_hh.sum(1)).mul_(2.0)  # 2 (b - U 1)
        out = torch.addmm(shifted_bias, x.view(steps * batch, -1), weight_ih.t(), alpha=2.0)
        out = out.view(steps, batch, -1)  # (T, B, H): 2 a_t without the recurrent term
        w_hh_t = weight_hh.t()
        s = h0.add(1.0).mul_(0.5)  # s_{-1} = (h0 + 1) / 2
        cpp = kernels.loops_for(x)
        if cpp is not None:
            cpp.tanh_forward(out, s, w_hh_t)
        else:
            for out_t in out.unbind(0):  # per-step views made once: slicing in the loop costs
                s = out_t.addmm_(s, w_hh_t, alpha=4.0).sigmoid_()
        out.mul_(2.0).sub_(1.0)  # h_t = 2 s_t - 1 = tanh(a_t)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, out)
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor, grad_hn: Tensor):
        x, h0, weight_ih, weight_hh, out = ctx.saved_tensors
        grad_pre = grad_out.clone(memory_format=torch.contiguous_format)  # (T, B, H)
        cpp = kernels.loops_for(x)
        if cpp is not None:  # same steps as below, 1 - h_t^2 computed inside the loop
            cpp.tanh_backward(grad_pre, grad_hn, out, weight_hh)
        else:
            dtanh = torch.addcmul(out.new_ones(()), out, out, value=-1.0)  # (T, B, H) 1 - h_t^2
            grad_pre[-1] += grad_hn  # dL/dh_t, turned into dL/d(pre-activation) in place below
            grad_pre[-1].mul_(dtanh[-1])
            grad_steps, dtanh_steps = grad_pre.unbind(0), dtanh.unbind(0)
            for t in range(x.shape[0] - 1, 0, -1):
                grad_steps[t - 1].addmm_(grad_steps[t], weight_hh).mul_(dtanh_steps[t - 1])
        needs = ctx.needs_input_grad
        grad_x = grad_h0 = grad_w_ih = grad_w_hh = grad_b = None
        if needs[0]:
            grad_x = input_grads(grad_pre, weight_ih)
        if needs[1]:
            grad_h0 = grad_pre[0].mm(weight_hh)
        if needs[2]:
            grad_w_ih = weight_grads(grad_pre, x)
        if needs[3]:
            grad_w_hh = recurrent_weight_grad(grad_pre, h0, out)
        if needs[4]:
            grad_b = grad_pre.sum((0, 1))
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b


class TanhRNN(RecurrentLayer):
    """Elman RNN with tanh, the paper's baseline unit.

    Equation: ``h_t = tanh(W x_t + U h_{t-1} + b)``.

    Shapes: x (T, B, I), hx (B, H) or None (zeros) -> out (T, B, H), h_n (B, H).
    Parameters: ``weight_ih`` (H, I) = W, ``weight_hh`` (H, H) = U, ``bias`` (H,) = b.
    Init ``paper``: W ~ U(-0.1, 0.1), U orthogonal, b = 0; ``torch``: all U(-1/sqrt(H), 1/sqrt(H)).

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
