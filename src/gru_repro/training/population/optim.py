"""RMSProp for a population: P members' parameters stacked along a leading dimension, one
learning rate per member, every member's update bit for bit the single run's.

The single run (``training/optim.py``) steps ``torch.optim.RMSprop`` (its single-tensor CPU
path) or ``FlooredRMSprop``. Here each step is one pass over the stacked tensors:

- every elementwise op that does not involve the learning rate runs once over all members. An
  elementwise kernel gives each element the same bits wherever it sits in a tensor (checked in
  tests/test_population_optim.py, tails and threads included), so member p's slice is the
  single run's tensor.
- the learning-rate op is a fused kernel in the single run (``add_(alpha=-lr)``: one FMA;
  ``addcdiv_(value=-lr)``: ``(-lr * g) / d`` rounded twice). Its vectorised form, with a
  (P, 1, ...) tensor of -lr, is ``addcmul_`` for the first (measured: the same FMA on this
  CPU build, float32 and float64) and ``addcdiv_(g * -lr, d)`` for the second. Whether this
  build's kernels agree is measured once per (dtype, device) on a probe tensor
  (:func:`vectorised_lr_ops_are_exact`); where they do not, the op runs per member on its
  contiguous slice with the very call the single run makes (``lr_update="per_member"``).

Hand-written (not a ``torch.optim.Optimizer``) because torch's optimizers hold one learning rate
per parameter group, and a group per member would cost P kernel calls for every op.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import torch
from torch import Tensor

from gru_repro.training.optim import OPTIMIZERS

log = logging.getLogger(__name__)

LR_UPDATES = ("auto", "vectorised", "per_member")


@functools.cache
def vectorised_lr_ops_are_exact(dtype: torch.dtype, device: str) -> bool:
    """Whether ``addcmul_`` with a (P, 1) tensor of -lr gives ``add_(alpha=-lr)``'s bits and
    ``addcdiv_(g * -lr, d)`` gives ``addcdiv_(g, d, value=-lr)``'s, measured on 3 x 4099
    random entries (a kernel that rounds differently differs on ~0.1% of them)."""
    gen = torch.Generator().manual_seed(1234)
    lrs = [3.1e-4, 7.7e-3, 1.3e-5]
    x, g = (torch.randn(3, 4099, generator=gen, dtype=dtype).to(device) for _ in range(2))
    d = (torch.rand(3, 4099, generator=gen, dtype=dtype) + 0.01).to(device)
    neg_lr = torch.tensor([-lr for lr in lrs], dtype=dtype, device=device).view(3, 1)
    fused_add, fused_div = x.clone(), x.clone()
    for k, lr in enumerate(lrs):
        fused_add[k].add_(g[k], alpha=-lr)
        fused_div[k].addcdiv_(g[k], d[k], value=-lr)
    return torch.equal(x.clone().addcmul_(g, neg_lr), fused_add) and torch.equal(
        x.clone().addcdiv_(g * neg_lr, d), fused_div
    )


class PopulationOptimizer:
    """What both forms share: stacked parameters, per-member lrs, lazily created state.

    ``params``: tensors of shape (P, ...) (nn.Parameters of a stacked model), their ``.grad``
    read at each step; a parameter whose ``.grad`` is None is skipped, as torch does.
    ``lrs``: P learning rates (Python floats, as torch's ``group["lr"]``); ``initial_lrs`` are
    the values a schedule starts from (torch's ``group["initial_lr"]``).
    """

    state_names: tuple[str, ...] = ()
    counts_steps = True  # torch's RMSprop keeps a "step" per parameter; FlooredRMSprop does not

    def __init__(self, params: Sequence[Tensor], lrs: Sequence[float], lr_update: str) -> None:
        self.params = list(params)
        self.lrs = [float(lr) for lr in lrs]
        if not self.lrs:
            raise ValueError("a population needs at least one member (lrs is empty)")
        for lr in self.lrs:
            if lr <= 0:
                raise ValueError(f"optim.lr must be > 0, got {lr}")
        if lr_update not in LR_UPDATES:
            raise ValueError(f"lr_update must be one of {', '.join(LR_UPDATES)}, got {lr_update!r}")
        self.lr_update = lr_update
        self.initial_lrs = list(self.lrs)
        self.state: list[dict[str, Tensor]] = [{} for _ in self.params]
        self.steps = [0] * len(self.params)  # updates each parameter received (torch's "step")
        self._check_members()

    @property
    def members(self) -> int:
        return len(self.lrs)

    def _check_members(self) -> None:
        for i, p in enumerate(self.params):
            if p.dim() == 0 or p.shape[0] != self.members:
                raise ValueError(
                    f"parameter {i} has shape {tuple(p.shape)}: its leading (member) dimension "
                    f"must be {self.members}, one per learning rate"
                )

    def _vectorised(self, p: Tensor) -> bool:
        if self.lr_update == "auto":
            return vectorised_lr_ops_are_exact(p.dtype, str(p.device))
        return self.lr_update == "vectorised"

    def _neg_lr(self, p: Tensor) -> Tensor:
        """(P, 1, ..., 1) tensor of -lr in ``p``'s dtype: the single run's ``value=-lr`` scalar
        is converted to the tensor's dtype the same way."""
        shape = (self.members,) + (1,) * (p.dim() - 1)
        return torch.tensor([-lr for lr in self.lrs], dtype=p.dtype, device=p.device).view(shape)

    def _add_lr_scaled(self, p: Tensor, buf: Tensor) -> None:
        """``p[k].add_(buf[k], alpha=-lrs[k])`` for every member k."""
        if self._vectorised(p):
            p.addcmul_(buf, self._neg_lr(p))
        else:
            for k, lr in enumerate(self.lrs):
                p[k].add_(buf[k], alpha=-lr)

    def _addcdiv_lr_scaled(self, target: Tensor, g: Tensor, denom: Tensor) -> None:
        """``target[k].addcdiv_(g[k], denom[k], value=-lrs[k])`` for every member k."""
        if self._vectorised(target):
            target.addcdiv_(g * self._neg_lr(target), denom)
        else:
            for k, lr in enumerate(self.lrs):
                target[k].addcdiv_(g[k], denom[k], value=-lr)

    def _update(self, p: Tensor, g: Tensor, state: dict[str, Tensor]) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every member (each with its own lr) from the parameters' ``.grad``."""
        self._check_members()
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if not self.state[i]:
                self.state[i] = {name: torch.zeros_like(p) for name in self.state_names}
            self.steps[i] += self.counts_steps
            self._update(p, p.grad, self.state[i])

    def keep(self, members: Sequence[int]) -> None:
        """Keep only ``members`` (indices into the current population, in the new order):
        their lrs and state rows. The model's parameters must be sliced the same way
        (``population.members.keep_members_``) before the next step."""
        index = [int(m) for m in members]
        if (
            not index
            or sorted(set(index)) != sorted(index)
            or not all(0 <= m < self.members for m in index)
        ):
            raise ValueError(
                f"keep: members {index} must be distinct indices in [0, {self.members})"
            )
        self.lrs = [self.lrs[m] for m in index]
        self.initial_lrs = [self.initial_lrs[m] for m in index]
        for state in self.state:
            for name, t in state.items():
                state[name] = t[index].contiguous()

    def options(self) -> dict:
        """The hyper-parameters (everything but the lrs), as ``build_optimizer`` takes them."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Plain tensors, floats and ints (``torch.load(weights_only=True)`` reads it)."""
        return {
            "options": self.options(),
            "lrs": list(self.lrs),
            "initial_lrs": list(self.initial_lrs),
            "steps": list(self.steps),
            "state": [{name: t.clone() for name, t in s.items()} for s in self.state],
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly from ``state_dict()``; refuses other hyper-parameters or sizes."""
        if state["options"] != self.options():
            raise ValueError(
                f"population optimizer state has options {state['options']}, "
                f"this optimizer {self.options()}"
            )
        if len(state["state"]) != len(self.params) or len(state["lrs"]) != self.members:
            raise ValueError(
                f"population optimizer state is for {len(state['state'])} parameters x "
                f"{len(state['lrs'])} members, this optimizer {len(self.params)} x {self.members}"
            )
        self.lrs = [float(x) for x in state["lrs"]]
        self.initial_lrs = [float(x) for x in state["initial_lrs"]]
        self.steps = [int(x) for x in state["steps"]]
        self.state = [
            {name: t.to(p).clone() for name, t in s.items()}
            for p, s in zip(self.params, state["state"], strict=True)
        ]


class PopulationRMSprop(PopulationOptimizer):
    """``torch.optim.RMSprop`` (single-tensor path) for every member, member k at ``lrs[k]``.

    State per parameter, as torch names it: ``square_avg``, plus ``momentum_buffer`` when
    ``momentum > 0`` and ``grad_avg`` when ``centered``; all (P, ...).
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        lrs: Sequence[float],
        *,
        alpha: float = 0.95,
        eps: float = 1e-6,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
        lr_update: str = "auto",
    ) -> None:
        if eps < 0 or momentum < 0 or weight_decay < 0 or alpha < 0:
            raise ValueError(
                f"RMSprop needs alpha, eps, momentum, weight_decay >= 0, got "
                f"{alpha}, {eps}, {momentum}, {weight_decay}"
            )
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)
        self.centered, self.weight_decay = bool(centered), float(weight_decay)
        self.state_names = ("square_avg",)
        self.state_names += ("momentum_buffer",) if self.momentum > 0 else ()
        self.state_names += ("grad_avg",) if self.centered else ()
        super().__init__(params, lrs, lr_update)

    def options(self) -> dict:
        return {
            "name": "rmsprop",
            "alpha": self.alpha,
            "eps": self.eps,
            "momentum": self.momentum,
            "centered": self.centered,
            "weight_decay": self.weight_decay,
        }

    def _update(self, p: Tensor, g: Tensor, state: dict[str, Tensor]) -> None:
        # torch/optim/rmsprop.py _single_tensor_rmsprop, op for op
        if self.weight_decay != 0:
            g = g.add(p, alpha=self.weight_decay)
        square_avg = state["square_avg"]
        square_avg.mul_(self.alpha).addcmul_(g, g, value=1 - self.alpha)
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(g, 1 - self.alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(self.eps)
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf.mul_(self.momentum).addcdiv_(g, avg)
            self._add_lr_scaled(p, buf)
        else:
            self._addcdiv_lr_scaled(p, g, avg)


class PopulationFlooredRMSprop(PopulationOptimizer):
    """The project's ``FlooredRMSprop`` (librnn's form) for every member, member k at
    ``lrs[k]``. State per parameter: ``square_avg`` and ``velocity``, (P, ...)."""

    state_names = ("square_avg", "velocity")
    counts_steps = False

    def __init__(
        self,
        params: Sequence[Tensor],
        lrs: Sequence[float],
        *,
        decay: float = 0.95,
        momentum: float = 0.9,
        rms_floor: float = 0.01,
        lr_update: str = "auto",
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"optim.decay must be in [0, 1), got {decay}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"optim.momentum must be in [0, 1), got {momentum}")
        if rms_floor <= 0:
            raise ValueError(f"optim.rms_floor must be > 0, got {rms_floor}")
        self.decay, self.momentum, self.rms_floor = float(decay), float(momentum), float(rms_floor)
        super().__init__(params, lrs, lr_update)

    def options(self) -> dict:
        return {
            "name": "rmsprop_released",
            "decay": self.decay,
            "momentum": self.momentum,
            "rms_floor": self.rms_floor,
        }

    def _update(self, p: Tensor, g: Tensor, state: dict[str, Tensor]) -> None:
        # training/optim.py FlooredRMSprop.step, op for op
        square_avg, velocity = state["square_avg"], state["velocity"]
        square_avg.mul_(self.decay).addcmul_(g, g, value=1 - self.decay)
        rms = square_avg.sqrt().clamp_(min=self.rms_floor)
        self._addcdiv_lr_scaled(velocity.mul_(self.momentum), g, rms)
        p.add_(velocity)


def build_population_optimizer(
    params: Sequence[Tensor],
    *,
    name: str,
    lrs: Sequence[float],
    alpha: float = 0.95,
    eps: float = 1e-6,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
    decay: float = 0.95,
    rms_floor: float = 0.01,
    schedule: str = "constant",
    final_lr_fraction: float = 1.0,
    lr_update: str = "auto",
) -> PopulationOptimizer:
    """``training.optim.build_optimizer`` for a population: the same knobs, ``lrs`` (one per
    member) instead of ``lr``. ``schedule``/``final_lr_fraction`` belong to the schedule."""
    del schedule, final_lr_fraction
    if name == "rmsprop":
        return PopulationRMSprop(
            params,
            lrs,
            alpha=alpha,
            eps=eps,
            momentum=momentum,
            centered=centered,
            weight_decay=weight_decay,
            lr_update=lr_update,
        )
    if name == "rmsprop_released":
        return PopulationFlooredRMSprop(
            params, lrs, decay=decay, momentum=momentum, rms_floor=rms_floor, lr_update=lr_update
        )
    raise ValueError(f"unknown optim.name {name!r}: choose one of {', '.join(OPTIMIZERS)}")
