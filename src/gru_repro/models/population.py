"""A population of P sequence models of one architecture: the parameters stacked along a
leading member dimension, each member computing what its single model would.

    population = build_population([model] * 10)     # 10 members starting from model's weights
    nll = population.member_step_nll(batch)         # (P, T, B) nats, 0 where padded
    population.member_state_dict(3)                 # member 3's weights as model.state_dict()
    population.keep([0, 2, 5])                      # drop the others from the compute

The parameters are ``nn.Parameter`` s of shape (P, *single shape), named and ordered as the
single model's (``rnn.weight_hh`` ...): the population optimizer, clipping and weight noise of
training/population/ act on them, and the single run's weight-noise draw broadcasts onto them.

:class:`FunctionalPopulation` is the reference implementation: member k is the single model's
own code run on row k of the stacked parameters (``torch.func.functional_call``), so every
member's numbers are the single run's bit for bit (tests/test_population_model.py). A fused
implementation (the member dimension inside the recurrent loops) registers itself in
:data:`FUSED_POPULATIONS` and :func:`build_population` picks it; the trainer only sees this
interface.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from gru_repro.models.sequence_model import SequenceModel
from gru_repro.models.units import UNITS


class PopulationModel(nn.Module):
    """The interface the population trainer uses; subclasses implement the computation.

    ``members``: P, the current number of members (shrinks with :meth:`keep`).
    """

    members: int

    def member_step_nll(self, batch: Any) -> Tensor:
        """(P, T, B) NLL in nats of each target frame for every member, 0 where ``batch.mask``
        is False: row k is member k's ``SequenceModel.step_nll(batch)``."""
        raise NotImplementedError

    def member_state_dict(self, member: int) -> dict[str, Tensor]:
        """Member ``member``'s weights as its single model's ``state_dict()`` (cloned)."""
        raise NotImplementedError

    def load_member_state_dicts(self, states: Sequence[dict[str, Tensor]]) -> None:
        """Set member k's weights from ``states[k]`` (single-model state dicts)."""
        raise NotImplementedError

    def keep(self, members: Sequence[int]) -> None:
        """Keep only ``members`` (indices into the current population, in the new order). The
        parameters are new tensors afterwards: ``parameters()`` again for the optimizer."""
        raise NotImplementedError

    def single_model(self) -> SequenceModel:
        """A fresh single model of the members' architecture (its weights are member 0's)."""
        raise NotImplementedError


def _check_same_architecture(models: Sequence[nn.Module]) -> None:
    if not models:
        raise ValueError("a population needs at least one member model")
    first = [(n, tuple(p.shape), p.dtype, p.device) for n, p in models[0].named_parameters()]
    for k, model in enumerate(models[1:], start=1):
        mine = [(n, tuple(p.shape), p.dtype, p.device) for n, p in model.named_parameters()]
        if mine != first or type(model) is not type(models[0]):
            raise ValueError(
                f"member {k} is not the architecture of member 0 (parameters {mine} vs {first})"
            )


class _StepNLL(nn.Module):
    """``model.step_nll`` as a module's forward, for ``functional_call`` (which calls forward)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> Tensor:
        return self.model.step_nll(batch)


class FunctionalPopulation(PopulationModel):
    """Reference population: member k runs the single model's ``step_nll`` on row k of the
    stacked parameters (``torch.func.functional_call``; one forward per member).

    Exact: each row is copied into a contiguous tensor of the single model's shape, aligned as
    its parameter is (a view at row k's offset is not, and float64 matmuls round differently
    there), the same kernels run on it, and the backward of ``unbind`` stacks the members'
    gradients without arithmetic. Buffers (none in this project's models) are shared.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        models = list(models)
        _check_same_architecture(models)
        self.members = len(models)
        # the template runs the code; kept out of the module tree so that its own parameters
        # are not the population's
        self._template = [_StepNLL(copy.deepcopy(models[0]))]
        names = [name for name, _ in models[0].named_parameters()]
        for name in names:
            owner = self
            *path, leaf = name.split(".")
            for part in path:
                if part not in owner._modules:
                    owner.add_module(part, nn.Module())
                owner = owner._modules[part]
            rows = [dict(m.named_parameters())[name].detach() for m in models]
            owner.register_parameter(leaf, nn.Parameter(torch.stack(rows).clone()))
        if [n for n, _ in self.named_parameters()] != names:  # the optimizer's state order
            raise ValueError(f"stacked parameter order {list(self.state_dict())} is not {names}")
        self._buffers_of_member = {
            name: b.detach().clone() for name, b in models[0].named_buffers()
        }

    @classmethod
    def stack(cls, models: Sequence[nn.Module]) -> FunctionalPopulation:
        return cls(models)

    @property
    def template(self) -> nn.Module:
        """The single model whose code runs every member (its own weights are never used):
        a forward hook on it sees each member's forward, member 0 first."""
        return self._template[0].model

    def member_step_nll(self, batch: Any) -> Tensor:
        template = self._template[0]
        rows = {name: p.unbind(0) for name, p in self.named_parameters()}
        buffers = {f"model.{n}": b for n, b in self._buffers_of_member.items()}
        outputs = []
        for k in range(self.members):
            # a copy of each row: a fresh allocation is aligned as the single model's parameter
            # is, and some kernels (float64 matmuls) round differently on a misaligned view
            weights = {f"model.{name}": row[k].clone() for name, row in rows.items()}
            outputs.append(functional_call(template, {**weights, **buffers}, (batch,)))
        return torch.stack(outputs)

    def member_state_dict(self, member: int) -> dict[str, Tensor]:
        single = self._template[0].model.state_dict()
        stacked = dict(self.named_parameters())
        return {
            key: (
                stacked[key].detach()[member].clone()
                if key in stacked
                else self._buffers_of_member[key].clone()
            )
            for key in single
        }

    @torch.no_grad()
    def load_member_state_dicts(self, states: Sequence[dict[str, Tensor]]) -> None:
        if len(states) != self.members:
            raise ValueError(f"{len(states)} member states for {self.members} members")
        for name, p in self.named_parameters():
            p.copy_(torch.stack([state[name] for state in states]))

    def keep(self, members: Sequence[int]) -> None:
        index = [int(m) for m in members]
        if (
            not index
            or len(set(index)) != len(index)
            or not all(0 <= m < self.members for m in index)
        ):
            raise ValueError(
                f"keep: members {index} must be distinct indices in [0, {self.members})"
            )
        # new Parameter objects: autograd caches a leaf's shape, so a leaf sliced in place
        # (``p.data = ...``) fails its next backward; the optimizer takes the new ones
        # (``PopulationOptimizer.params``)
        for module in self.modules():
            for leaf, p in list(module._parameters.items()):
                module._parameters[leaf] = nn.Parameter(p.detach()[index].contiguous())
        self.members = len(index)

    def single_model(self) -> SequenceModel:
        model = copy.deepcopy(self._template[0].model)
        model.load_state_dict(self.member_state_dict(0))
        return model

    def train(self, mode: bool = True) -> FunctionalPopulation:
        self._template[0].train(mode)  # the code that runs: its training flag is the members'
        return super().train(mode)

    def _apply(self, fn, recurse=True):  # .to(device) / .double() reach the template too
        self._template[0]._apply(fn, recurse)
        self._buffers_of_member = {n: fn(b) for n, b in self._buffers_of_member.items()}
        return super()._apply(fn, recurse)


# unit -> constructor of a fused population (models -> PopulationModel), or None where this
# build has none; filled by the module that implements one
FUSED_POPULATIONS: dict[str, Callable[[Sequence[nn.Module]], PopulationModel]] = {}


def build_population(
    models: Sequence[nn.Module], fused: bool | None = None, *, unit: str | None = None
) -> PopulationModel:
    """A population of ``models`` (identical architecture; member k starts at models[k]).

    ``fused``: None picks the fused implementation of the members' unit where one is
    registered, else the reference; True requires the fused one; False the reference.
    ``unit``: the members' unit name (models/units.py), by default read off their ``rnn``.
    """
    models = list(models)
    if unit is None and models:
        layer = type(getattr(models[0], "rnn", None))
        unit = next((name for name, cls in UNITS.items() if layer is cls), "")
    fused_builder = FUSED_POPULATIONS.get(unit)
    if fused and fused_builder is None:
        raise ValueError(f"no fused population implementation for unit {unit!r}")
    if fused_builder is not None and fused is not False:
        return fused_builder(models)
    return FunctionalPopulation.stack(models)
