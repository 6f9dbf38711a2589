"""Shared base of the three recurrent layers: parameters, initialisation, input checks.

Every layer stores its weights with torch.nn's names and gate-stacked shapes::

    weight_ih  (G*H, I)   input-to-hidden, G gate blocks stacked along dim 0
    weight_hh  (G*H, H)   hidden-to-hidden, same gate order
    bias       (G*H,)     one bias per gate (the paper's b_*)

and computes ``forward(x (T, B, I), hx=None) -> (out (T, B, H), h_n)`` by handing *the current
attributes* to a hand-written ``torch.autograd.Function``. Nothing is cached at init, so what
changes the attributes is seen: weight noise added in place (``training.weight_noise``) and
``torch.func.functional_call`` with other tensors (the ``gru_repro.nn`` front).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import torch
from torch import Tensor, nn

INITS = ("paper", "torch")


class RecurrentLayer(nn.Module):
    """Base class; subclasses set ``num_gates`` and implement ``forward``.

    Args:
        input_size: I, features per frame.
        hidden_size: H, units in the layer.
        init: ``"paper"`` (the released code: input weights U(-0.1, 0.1), one orthogonal
            H x H block per gate in ``weight_hh``, biases and peepholes 0) or ``"torch"``
            (torch.nn's U(-1/sqrt(H), 1/sqrt(H)) on every parameter).
    """

    num_gates: int = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        init: str = "paper",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size must be a positive int, got {input_size!r}")
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive int, got {hidden_size!r}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.init = init
        factory = {"device": device, "dtype": dtype}
        gh = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gh, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(gh, hidden_size, **factory))
        # Subclasses add their biases (and peepholes), then call reset_parameters().

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """(Re-)initialise every parameter according to ``self.init``."""
        if self.init == "torch":
            bound = 1.0 / math.sqrt(self.hidden_size)
            for p in self.parameters():
                nn.init.uniform_(p, -bound, bound)
            return
        nn.init.uniform_(self.weight_ih, -0.1, 0.1)
        for block in self.weight_hh.split(self.hidden_size, dim=0):
            nn.init.orthogonal_(block)
        for name, p in self.named_parameters():
            if name not in ("weight_ih", "weight_hh"):
                nn.init.zeros_(p)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, init={self.init!r}"

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input (T, B, {self.input_size}), got "
                f"{tuple(x.shape)}: inputs are time-major"
            )

    def _initial(self, x: Tensor, h0: Tensor | None) -> Tensor:
        """A contiguous (B, H) initial state: zeros when ``h0`` is None."""
        shape = (x.shape[1], self.hidden_size)
        if h0 is None:
            return x.new_zeros(shape)
        if tuple(h0.shape) != shape:
            raise ValueError(
                f"{type(self).__name__} expects an initial state of shape {shape}, "
                f"got {tuple(h0.shape)}"
            )
        return h0.contiguous()


# The helpers below also take a population's stacked weights (P, G, K) (models/population_fused.py):
# sequences are then (P, T, B, K) (the input x stays (T, B, I), shared by the members), states
# (P, B, H). Their whole-sequence products run one of two ways (``exact_members``):
#
# - batched (float32, the default): one ``bmm``/``baddbmm`` over all members. Each member's
#   numbers agree with its single run's within float32 rounding (torch's CPU bmm runs other
#   kernels than mm for small operands), and every fixed cost is paid once.
# - exact (float64 always; float32 inside ``exact_member_products()``): member p's product is
#   the single run's own call on member p's slices, so every member is its single run bit for
#   bit (tests/models/test_population_fused.py). For the same reason every member's slice of a
#   population buffer then starts where a fresh tensor would (member_empty): MKL rounds some
#   products differently on operands that are not 64-byte aligned.

ALIGN_BYTES = 64  # where torch's CPU allocator starts every tensor

_EXACT_FLOAT32 = threading.local()


@contextlib.contextmanager
def exact_member_products(on: bool = True) -> Iterator[None]:
    """Within the block, float32 populations compute their products member by member (bit for
    bit their single runs, slower); ``on=False`` is a no-op. Per thread, nests."""
    before = getattr(_EXACT_FLOAT32, "on", False)
    _EXACT_FLOAT32.on = before or on
    try:
        yield
    finally:
        _EXACT_FLOAT32.on = before


def exact_members(x: Tensor) -> bool:
    """Whether a population's products on tensors like ``x`` run per member (float64, or
    float32 inside :func:`exact_member_products`) rather than batched."""
    return x.dtype == torch.float64 or getattr(_EXACT_FLOAT32, "on", False)


def member_empty(like: Tensor, shape: tuple[int, ...]) -> Tensor:
    """An empty (P, ...) tensor like ``like`` whose member slices are each contiguous and
    start on an ALIGN_BYTES boundary (the member stride is padded to it)."""
    members, rest = shape[0], tuple(shape[1:])
    per_member = math.prod(rest)
    unit = max(1, ALIGN_BYTES // like.element_size())
    stride = -(-per_member // unit) * unit
    strides, inner = [], 1
    for size in reversed(rest):
        strides.insert(0, inner)
        inner *= size
    flat = like.new_empty(members * stride)
    return flat.as_strided((members, *rest), (stride, *strides))


def aligned_members(x: Tensor) -> Tensor:
    """A copy of ``x`` (P, ...) laid out as :func:`member_empty`."""
    out = member_empty(x, tuple(x.shape))
    out.copy_(x)
    return out


def member_weights(weight: Tensor) -> Tensor:
    """One run's weight as it is; a population's stacked (P, ., .) weight aligned per member
    (:func:`aligned_members`) when its products are exact, else contiguous."""
    if weight.dim() != 3:
        return weight
    return aligned_members(weight) if exact_members(weight) else weight.contiguous()


def sequence_buffer(like: Tensor, shape: tuple[int, ...]) -> Tensor:
    """An empty buffer of ``shape``: contiguous for one run's (T, B, K) and a batched
    population's (P, T, B, K), :func:`member_empty` for an exact population's."""
    if len(shape) == 4 and exact_members(like):
        return member_empty(like, shape)
    return like.new_empty(shape)


def sequence_copy(x: Tensor) -> Tensor:
    """A contiguous copy of one run's sequence (or a batched population's), an aligned one of
    an exact population's."""
    if x.dim() == 4 and exact_members(x):
        return aligned_members(x)
    return x.clone(memory_format=torch.contiguous_format)


def _rows(x: Tensor) -> Tensor:
    """(P, T, B, K) -> (P, T*B, K), a view where the member slices are contiguous."""
    return x.reshape(x.shape[0], -1, x.shape[-1])


def input_projection(x: Tensor, weight_ih: Tensor, bias: Tensor) -> Tensor:
    """All time steps' input projections as one matmul: (T, B, I) -> (T, B, G*H), bias added;
    with members, weight_ih (P, G, I) and bias (P, G) -> (P, T, B, G)."""
    steps, batch, _ = x.shape
    flat_x = x.reshape(steps * batch, -1)
    if weight_ih.dim() == 3:
        members, gates = weight_ih.shape[0], weight_ih.shape[1]
        if not exact_members(weight_ih):  # x is shared: one baddbmm over the members
            shared = flat_x.expand(members, -1, -1)
            out = torch.baddbmm(bias.unsqueeze(1), shared, weight_ih.mT)
            return out.view(members, steps, batch, gates)
        out = member_empty(x, (members, steps, batch, gates))
        weight_ih, bias = aligned_members(weight_ih), aligned_members(bias)
        for w, b, o in zip(weight_ih, bias, out, strict=True):
            torch.addmm(b, flat_x, w.t(), out=o.view(steps * batch, gates))
        return out
    flat = torch.addmm(bias, flat_x, weight_ih.t())
    return flat.view(steps, batch, -1)


def first_step_grad(grad_pre: Tensor, weight_hh: Tensor) -> Tensor:
    """dL/dh0 = dL/da_0 U: (T, B, G), (G, H) -> (B, H); members (P, T, B, G), (P, G, H)."""
    if weight_hh.dim() == 3:
        if not exact_members(weight_hh):
            return torch.bmm(grad_pre[:, 0], weight_hh)
        weight_hh = aligned_members(weight_hh)
        return torch.stack([g[0].mm(w) for g, w in zip(grad_pre, weight_hh, strict=True)])
    return grad_pre[0].mm(weight_hh)


def bias_grad(grad_pre: Tensor) -> Tensor:
    """Sum over steps and batch: (T, B, G) -> (G,); members (P, T, B, G) -> (P, G)."""
    return grad_pre.sum((-3, -2))


def previous_states(first: Tensor, states: Tensor) -> Tensor:
    """The state before every step: (B, H), (T, B, H) -> (T, B, H) = [first, states[:-1]];
    with members, (P, B, H), (P, T, B, H) -> (P, T, B, H)."""
    if states.dim() == 4:
        return torch.cat([first.unsqueeze(1), states[:, :-1]], dim=1)
    return torch.cat([first.unsqueeze(0), states[:-1]])


def input_grads(grad_pre: Tensor, weight_ih: Tensor) -> Tensor:
    """dL/dx for all steps as one matmul: (T, B, G) x (G, I) -> (T, B, I).

    For few inputs (I <= G / 4, e.g. speech's 20) computed as (W^T grad_pre^T)^T, which MKL
    runs faster (about 1.4x) than grad_pre W; the transposed copy is small.
    """
    if weight_ih.dim() == 3:  # members: the sum of their contributions (x is shared)
        if not exact_members(weight_ih):
            members, steps, batch, _ = grad_pre.shape
            flat = torch.bmm(_rows(grad_pre), weight_ih).sum(0)
            return flat.view(steps, batch, -1)
        return sum(input_grads(g, w) for g, w in zip(grad_pre, weight_ih, strict=True))
    steps, batch, gates = grad_pre.shape
    flat = grad_pre.reshape(-1, gates)
    if 4 * weight_ih.shape[1] <= gates:
        return weight_ih.t().mm(flat.t()).t().contiguous().view(steps, batch, -1)
    return flat.mm(weight_ih).view(steps, batch, -1)


def weight_grads(grad_pre: Tensor, inputs: Tensor) -> Tensor:
    """Sum over all steps of outer products, as one matmul: (T,B,G) x (T,B,K) -> (G, K).

    Computed as (inputs^T grad_pre)^T: MKL runs this orientation faster (up to 1.5x for a
    skinny K such as the speech task's 20 inputs) and the transposed copy is small.

    Members: grad_pre (P, T, B, G) and inputs (T, B, K) shared or (P, T, B, K) -> (P, G, K).
    """
    if grad_pre.dim() == 4:
        if not exact_members(grad_pre):
            members = grad_pre.shape[0]
            flat_in = (
                _rows(inputs)
                if inputs.dim() == 4
                else inputs.reshape(1, -1, inputs.shape[-1]).expand(members, -1, -1)
            )
            return torch.bmm(_rows(grad_pre).mT, flat_in)
        rows = inputs.unbind(0) if inputs.dim() == 4 else [inputs] * grad_pre.shape[0]
        return torch.stack([weight_grads(g, k) for g, k in zip(grad_pre, rows, strict=True)])
    flat_in = inputs.reshape(-1, inputs.shape[-1])
    return flat_in.t().mm(grad_pre.reshape(-1, grad_pre.shape[-1])).t().contiguous()


def recurrent_weight_grad(grad_pre: Tensor, h0: Tensor, out: Tensor) -> Tensor:
    """sum_t grad_pre[t]^T h_{t-1} with h_{-1} = h0, without materialising the shifted states.

    grad_pre (T, B, G), h0 (B, H), out (T, B, H) -> (G, H); members (P, T, B, G), (P, B, H),
    (P, T, B, H) -> (P, G, H).
    """
    if grad_pre.dim() == 4:
        if not exact_members(grad_pre):
            members, steps, _, gates = grad_pre.shape
            grad = torch.bmm(grad_pre[:, 0].mT, h0)  # (P, G, H)
            if steps > 1:
                shifted = out[:, :-1].reshape(members, -1, out.shape[-1])
                grad.baddbmm_(grad_pre[:, 1:].reshape(members, -1, gates).mT, shifted)
            return grad
        return torch.stack(
            [recurrent_weight_grad(*rows) for rows in zip(grad_pre, h0, out, strict=True)]
        )
    grad = h0.t().mm(grad_pre[0])  # (H, G): transposed, see weight_grads
    if out.shape[0] > 1:
        hidden = out.shape[-1]
        grad.addmm_(out[:-1].reshape(-1, hidden).t(), grad_pre[1:].reshape(-1, grad_pre.shape[-1]))
    return grad.t().contiguous()
