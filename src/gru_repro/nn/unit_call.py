"""Run one of the project's single-layer units with given weight tensors, twice differentiable.

The front (:mod:`gru_repro.nn`) owns its parameters under torch.nn's names; each call hands
them to a parameterless copy of the unit (built on the ``meta`` device) through
:func:`torch.func.functional_call`, so the unit's fast loops (hand-written BPTT, C++ or Python,
see :mod:`gru_repro.models.kernels`) do the work.

Those loops' backward is ``once_differentiable``. So that gradients of gradients (e.g. a
gradient penalty, ``torch.autograd.grad(..., create_graph=True)``) work, a call that needs
gradients goes through :class:`FastLoopsTwiceDifferentiable`: its first-order backward is the
fast loops' own (their graph, built inside its forward, is dropped by that backward, so memory
is as without the wrapper); a backward that must itself be differentiable (grad mode on inside
backward, which is what ``create_graph=True`` means) recomputes the call with the
plain-autograd loops of :mod:`gru_repro.models.reference` and differentiates those instead
(same equations, so the same gradients up to rounding; slower, but only then). A second
backward through the same graph (``retain_graph=True``) reruns the fast loops.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gru_repro.models.lstm import LSTM
from gru_repro.models.recurrent import RecurrentLayer
from gru_repro.models.reference import reference_forward

State = tuple[Tensor, ...]  # (h,) for the tanh RNN and the GRU, (h, c) for the LSTM


class ReferenceLoop(nn.Module):
    """``reference_forward`` of ``unit`` as a module, so functional_call can swap its weights."""

    def __init__(self, unit: RecurrentLayer) -> None:
        super().__init__()
        self.unit = unit

    def forward(self, x: Tensor, hx):
        return reference_forward(self.unit, x, hx)


def _call(
    unit: RecurrentLayer,
    names: tuple[str, ...],
    x: Tensor,
    state: State,
    weights: State,
    *,
    reference: bool,
) -> tuple[Tensor, ...]:
    """``unit(x, state)`` with its parameters ``names`` replaced by ``weights``; flat outputs
    (out (T, B, H), *final state (B, H))."""
    hx = state if isinstance(unit, LSTM) else state[0]
    if reference:
        module: nn.Module = ReferenceLoop(unit)
        params = {f"unit.{name}": w for name, w in zip(names, weights, strict=True)}
    else:
        module, params = unit, dict(zip(names, weights, strict=True))
    out, final = torch.func.functional_call(module, params, (x, hx), strict=True)
    return (out, *(final if isinstance(final, tuple) else (final,)))


class FastLoopsTwiceDifferentiable(torch.autograd.Function):
    """The unit's fast loops forward; see the module docstring for the two backward paths.

    Inputs after the three constants: x (T, B, I), the state tensors (B, H), the weights.
    """

    @staticmethod
    def forward(ctx, unit, names, n_state, *inputs):
        detached = tuple(t.detach().requires_grad_(t.requires_grad) for t in inputs)
        x, state, weights = detached[0], detached[1 : 1 + n_state], detached[1 + n_state :]
        with torch.enable_grad():  # a graph through the fast loops, for the first-order case
            outputs = _call(unit, names, x, state, weights, reference=False)
        ctx.unit, ctx.names, ctx.n_state = unit, names, n_state
        ctx.fast_graph = (detached, outputs)
        ctx.save_for_backward(*inputs)
        return tuple(o.detach() for o in outputs)

    @staticmethod
    def backward(ctx, *grad_outputs):
        needs = ctx.needs_input_grad[3:]
        differentiable = torch.is_grad_enabled()  # backward(create_graph=True)
        fast_graph, ctx.fast_graph = ctx.fast_graph, None  # freed now, like saved tensors
        if differentiable:
            inputs = ctx.saved_tensors
            outputs = _rerun(ctx, inputs, reference=True)
        elif fast_graph is not None:
            inputs, outputs = fast_graph
        else:  # another backward through this node (retain_graph=True): rerun the loops
            inputs = tuple(t.detach().requires_grad_(t.requires_grad) for t in ctx.saved_tensors)
            outputs = _rerun(ctx, inputs, reference=False)
        wanted = [t for t, need in zip(inputs, needs, strict=True) if need]
        grads = iter(
            torch.autograd.grad(
                outputs, wanted, grad_outputs, create_graph=differentiable, allow_unused=True
            )
        )
        return (None, None, None, *(next(grads) if need else None for need in needs))


def _rerun(ctx, inputs: State, *, reference: bool) -> tuple[Tensor, ...]:
    """The forward again, with a graph: through the reference loops or the fast ones."""
    n = ctx.n_state
    with torch.enable_grad():
        return _call(
            ctx.unit,
            ctx.names,
            inputs[0],
            inputs[1 : 1 + n],
            inputs[1 + n :],
            reference=reference,
        )


def run_unit(
    unit: RecurrentLayer, names: tuple[str, ...], x: Tensor, state: State, weights: State
) -> tuple[Tensor, State]:
    """One direction of one layer: x (T, B, I), state tensors (B, H) -> (out (T, B, H), final
    state), with ``unit``'s parameters ``names`` taken from ``weights``."""
    inputs = (x, *state, *weights)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        outputs = FastLoopsTwiceDifferentiable.apply(unit, names, len(state), *inputs)
    else:
        outputs = _call(unit, names, x, state, weights, reference=False)
    return outputs[0], tuple(outputs[1:])
