"""The fused population: P members' forward and backward as one computation, the member
dimension inside the recurrent loops.

    population = FusedPopulation([model] * 10)   # or build_population(models, fused=True)
    nll = population.member_step_nll(batch)      # (P, T, B), row k = member k's step_nll

Parameters, names, state dicts and ``keep`` are :class:`FunctionalPopulation`'s (stacked
(P, *shape) under the single model's names, so training/population's optimizer, clipping and
weight noise act on them unchanged); only the computation differs. The reference runs the
whole single model once per member through ``functional_call``; here

- the loops over time run once for all members: the units' own autograd Functions
  (TanhRNNFunction, PaperGRUFunction, ResetAfterGRUFunction, LSTMFunction) take the stacked
  weights and run the loops' member layout (models/loops_python.py, csrc/loops.cpp): (P, T,
  B, K) sequences, each member's recurrent products with its own weights, the elementwise
  passes over all members (the C++ loops member after member, each over its whole sequence);
- the whole-sequence products (input projections, weight gradients, the output layer,
  ``MemberLinearFunction``) and the Bernoulli NLL run batched or exact (recurrent.py):
  batched (float32 by default) as one ``bmm``/``baddbmm`` and one NLL call over all members;
  exact (float64, or float32 inside ``recurrent.exact_member_products``) per member with the
  single run's own calls, on member slices that start 64-byte aligned as fresh tensors do
  (``recurrent.member_empty``): torch's CPU ``bmm`` runs other kernels than ``mm`` for small
  operands, MKL rounds some products differently on misaligned operands, and exp/log (in the
  NLL) round differently in a tensor's vectorised body and its tail.

Exactness: with exact products, under the C++ loops every member's NLL and gradients are its
single model's bit for bit (float32 and float64, tests/models/test_population_fused.py; the
population trainer's bit-for-bit tests run so); batched, within float32 rounding; under the
Python loops within rounding (their per-step ``baddbmm_`` against the single run's
``addmm_``). A build whose kernels round differently fails those tests.

What it saves is the per-update work outside the arithmetic (the P runs' per-op costs, noise,
clipping and optimizer steps, once for all); the arithmetic is the P runs' (``make bench``,
population rows).

Only the Bernoulli head (the music tasks) is fused; other heads (speech's mixture) get the
reference population (:func:`fused_population`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from gru_repro.models.gru import GRU, PaperGRUFunction, ResetAfterGRUFunction
from gru_repro.models.heads import BernoulliHead
from gru_repro.models.lstm import LSTM, LSTMFunction
from gru_repro.models.population import (
    FUSED_POPULATIONS,
    FunctionalPopulation,
    PopulationModel,
)
from gru_repro.models.recurrent import (
    ALIGN_BYTES,
    aligned_members,
    exact_members,
    member_empty,
)
from gru_repro.models.tanh_rnn import TanhRNN, TanhRNNFunction
from gru_repro.models.units import UNITS

log = logging.getLogger(__name__)


def fusable(model: nn.Module) -> bool:
    """Whether ``model`` (a SequenceModel) has a unit and head the fused population runs."""
    rnn, head = getattr(model, "rnn", None), getattr(model, "head", None)
    return isinstance(rnn, (TanhRNN, GRU, LSTM)) and type(head) is BernoulliHead


class MemberLinearFunction(torch.autograd.Function):
    """Each member's output layer, ``nn.Linear`` on its own states: (P, T, B, H), weight
    (P, D, H), bias (P, D) -> (P, T, B, D).

    Batched (recurrent.exact_members false): one baddbmm forward, two bmm and a sum backward.
    Exact: per member the single run's calls (its ``F.linear`` folds (T, B) into one addmm;
    autograd's backward of it is grad W = g^T h, grad h = g W, grad b = the sum of g over
    rows), on operands aligned as the single run's are (recurrent.py says why both).
    """

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        members, steps, batch, size = hidden.shape
        rows, outputs = steps * batch, weight.shape[1]
        ctx.exact = exact_members(hidden)
        if not ctx.exact:  # one baddbmm over the members (recurrent.py: batched products)
            hidden = hidden.contiguous()
            ctx.save_for_backward(hidden, weight)
            flat = hidden.view(members, rows, size)
            return torch.baddbmm(bias.unsqueeze(1), flat, weight.mT).view(
                members, steps, batch, outputs
            )
        weight, bias = aligned_members(weight), aligned_members(bias)
        hidden = hidden if _aligned(hidden) else aligned_members(hidden)
        out = member_empty(hidden, (members, steps, batch, outputs))
        for h, w, b, o in zip(hidden, weight, bias, out, strict=True):
            torch.addmm(b, h.view(rows, size), w.t(), out=o.view(rows, outputs))
        ctx.save_for_backward(hidden, weight)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        hidden, weight = ctx.saved_tensors
        members, steps, batch, size = hidden.shape
        rows, outputs = steps * batch, weight.shape[1]
        if not ctx.exact:
            flat = grad.reshape(members, rows, outputs)
            grad_hidden = torch.bmm(flat, weight).view(members, steps, batch, size)
            grad_weight = torch.bmm(flat.mT, hidden.view(members, rows, size))
            return grad_hidden, grad_weight, flat.sum(1)
        grad = grad if _aligned(grad) else aligned_members(grad)
        grad_hidden = member_empty(hidden, tuple(hidden.shape))
        grad_weight, grad_bias = [], []
        for g, h, w, gh in zip(grad, hidden, weight, grad_hidden, strict=True):
            flat = g.view(rows, outputs)
            torch.mm(flat, w, out=gh.view(rows, size))
            grad_weight.append(flat.t().mm(h.view(rows, size)))
            grad_bias.append(flat.sum(0))
        return grad_hidden, torch.stack(grad_weight), torch.stack(grad_bias)


class MemberBernoulliNLL(torch.autograd.Function):
    """The Bernoulli NLL of logits (P, T, B, D) against targets (T, B, D) shared by the members,
    summed over D -> (P, T, B): ``softplus(x) - t x``, the same function as
    ``F.binary_cross_entropy_with_logits`` in fewer passes over the (P, T, B, D) logits (2
    forward, 1 backward: ``(sigmoid(x) - t) g``), which is a quarter of a batched population's
    update at batch 8. Agrees with torch's within float32 rounding (~1e-7 relative); the exact
    path keeps torch's call."""

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor) -> Tensor:
        ctx.save_for_backward(logits, targets)
        return torch.addcmul(F.softplus(logits), logits, targets, value=-1).sum(-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        logits, targets = ctx.saved_tensors
        return torch.sigmoid(logits).sub_(targets).mul_(grad.unsqueeze(-1)), None


def _aligned(x: Tensor) -> bool:
    """Whether every member slice of ``x`` (P, ...) is contiguous and starts on a boundary."""
    return x[0].is_contiguous() and all(
        (x.data_ptr() + k * x.stride(0) * x.element_size()) % ALIGN_BYTES == 0
        for k in range(x.shape[0])
    )


class FusedPopulation(FunctionalPopulation):
    """P members of one music model (tanh, either GRU form, LSTM with or without peepholes;
    Bernoulli head), computed together; see the module docstring."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        models = list(models)
        if models and not fusable(models[0]):
            raise ValueError(
                f"FusedPopulation runs tanh/gru/lstm units with a Bernoulli head, not "
                f"{type(getattr(models[0], 'rnn', None)).__name__} with "
                f"{type(getattr(models[0], 'head', None)).__name__}: use FunctionalPopulation"
            )
        super().__init__(models)

    def member_step_nll(self, batch: Any) -> Tensor:
        hidden = self._hidden_states(batch.inputs)  # (P, T, B, H)
        linear = self.head.linear
        # each member's nn.Linear on its own states: batched, or exact per member (recurrent.py)
        logits = MemberLinearFunction.apply(hidden, linear.weight, linear.bias)  # (P, T, B, D)
        if not exact_members(logits):  # one call over all members (float32 rounding)
            nll = MemberBernoulliNLL.apply(logits, batch.targets)
            return nll.masked_fill(~batch.mask, 0.0)  # (P, T, B)
        # exact: the NLL per member (the single run's call on its aligned slice): exp and log
        # run vectorised except in a tensor's tail, so one call over all members would give
        # the elements near each member's end other bits than its single run's
        nll = torch.stack(
            [
                F.binary_cross_entropy_with_logits(member, batch.targets, reduction="none").sum(-1)
                for member in logits
            ]
        )
        return nll.masked_fill(~batch.mask, 0.0)  # (P, T, B)

    def _hidden_states(self, x: Tensor) -> Tensor:
        """The members' hidden states (P, T, B, H) for inputs x (T, B, I), from zero states."""
        layer, rnn = self.template.rnn, self.rnn
        members, hidden = self.members, layer.hidden_size
        h0 = member_empty(x, (members, x.shape[1], hidden)).zero_()  # aligned per member
        if x.shape[0] == 0:
            return x.new_empty(members, 0, x.shape[1], hidden)
        if isinstance(layer, TanhRNN):
            out, _ = TanhRNNFunction.apply(x, h0, rnn.weight_ih, rnn.weight_hh, rnn.bias)
        elif isinstance(layer, GRU) and layer.reset_after:
            out, _ = ResetAfterGRUFunction.apply(
                x, h0, rnn.weight_ih, rnn.weight_hh, rnn.bias_ih, rnn.bias_hh
            )
        elif isinstance(layer, GRU):
            out, _ = PaperGRUFunction.apply(x, h0, rnn.weight_ih, rnn.weight_hh, rnn.bias)
        else:
            peephole = rnn.weight_peephole if layer.peephole else None
            out, _, _ = LSTMFunction.apply(
                x,
                h0,
                member_empty(x, tuple(h0.shape)).zero_(),
                rnn.weight_ih,
                rnn.weight_hh,
                rnn.bias,
                peephole,
            )
        return out


def fused_population(models: Sequence[nn.Module]) -> PopulationModel:
    """The fused population of ``models`` where it runs them (music heads), else the
    reference (:class:`FunctionalPopulation`, e.g. speech's mixture head)."""
    models = list(models)
    if models and not fusable(models[0]):
        log.info("population: %s head not fused, using the reference", type(models[0].head))
        return FunctionalPopulation.stack(models)
    return FusedPopulation(models)


for _unit in UNITS:
    FUSED_POPULATIONS[_unit] = fused_population
