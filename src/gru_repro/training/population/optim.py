"""RMSProp for a population: P members' parameters stacked along a leading dimension, one
learning rate per member, every member's update bit for bit the single run's.

The single run (``training/optim.py``) steps ``torch.optim.RMSprop`` (its single-tensor CPU
path) or ``FlooredRMSprop``. Here each step is one pass over the stacked tensors:

- every elementwise op that does not involve the learning rate runs once over all members. An
  elementwise kernel gives each element the same bits wherever it sits in a tensor (checked in
  tests/training/test_population_optim.py, tails and threads included), so member p's slice is the
  single run's tensor.
- the learning-rate op (a fused kernel in the single run) runs vectorised where that is bit
  for bit the fused kernel, else per member (``population/stacked.py`` says how).

Hand-written (not a ``torch.optim.Optimizer``) because torch's optimizers hold one learning rate
per parameter group, and a group per member would cost P kernel calls for every op.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from gru_repro.training.optim import OPTIMIZERS, SCHEDULE_KEYS, update_scale
from gru_repro.training.population.clipping import member_gradient_norms
from gru_repro.training.population.schedule import PopulationSchedule, build_population_schedule
from gru_repro.training.population.stacked import PopulationOptimizer


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
    ``lrs[k]``. State per parameter: ``square_avg`` and ``velocity``, (P, ...).

    ``max_update_norm``: each member's applied update scaled by ``min(1, cap / ||v_k||)``, its
    own velocity's norm over all parameters taken in the single run's order
    (``population.clipping.member_gradient_norms``, the single run's ``global_norm`` per row).
    """

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
        max_update_norm: float | None = None,
        lr_update: str = "auto",
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"optim.decay must be in [0, 1), got {decay}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"optim.momentum must be in [0, 1), got {momentum}")
        if rms_floor <= 0:
            raise ValueError(f"optim.rms_floor must be > 0, got {rms_floor}")
        if max_update_norm is not None and max_update_norm <= 0:
            raise ValueError(f"optim.max_update_norm must be > 0 or null, got {max_update_norm}")
        self.decay, self.momentum, self.rms_floor = float(decay), float(momentum), float(rms_floor)
        self.max_update_norm = None if max_update_norm is None else float(max_update_norm)
        self.last_update_norms: list[float] | None = None  # each member's ||v_t|| (capped)
        super().__init__(params, lrs, lr_update)

    def options(self) -> dict:
        options = {
            "name": "rmsprop_released",
            "decay": self.decay,
            "momentum": self.momentum,
            "rms_floor": self.rms_floor,
        }
        if self.max_update_norm is not None:  # absent when off, as state dicts before the cap
            options["max_update_norm"] = self.max_update_norm
        return options

    def _update(self, p: Tensor, g: Tensor, state: dict[str, Tensor]) -> None:
        # training/optim.py FlooredRMSprop.step, op for op
        square_avg, velocity = state["square_avg"], state["velocity"]
        square_avg.mul_(self.decay).addcmul_(g, g, value=1 - self.decay)
        rms = square_avg.sqrt().clamp_(min=self.rms_floor)
        self._addcdiv_lr_scaled(velocity.mul_(self.momentum), g, rms)
        if self.max_update_norm is None:
            p.add_(velocity)  # else in step, once every member's norm is known

    @torch.no_grad()
    def step(self) -> None:
        super().step()
        if self.max_update_norm is None:
            return
        stepped = [(p, s["velocity"]) for p, s in zip(self.params, self.state, strict=True)
                   if p.grad is not None]  # fmt: skip
        if not stepped:
            return
        norms = member_gradient_norms([v for _, v in stepped])
        self.last_update_norms = norms
        scales = [update_scale(n, self.max_update_norm) for n in norms]
        for p, velocity in stepped:
            self._add_member_scaled(p, velocity, scales)


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
    max_update_norm: float | None = None,
    lr_update: str = "auto",
) -> PopulationOptimizer:
    """``training.optim.build_optimizer`` for a population: the same knobs, ``lrs`` (one per
    member) instead of ``lr``."""
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
            params,
            lrs,
            decay=decay,
            momentum=momentum,
            rms_floor=rms_floor,
            max_update_norm=max_update_norm,
            lr_update=lr_update,
        )
    raise ValueError(f"unknown optim.name {name!r}: choose one of {', '.join(OPTIMIZERS)}")


def build_population_optimization(
    params: Sequence[Tensor], *, lrs: Sequence[float], optim_options: dict, total_updates: int
) -> tuple[PopulationOptimizer, PopulationSchedule]:
    """``training.optim.build_optimization`` for a population: the ``optim`` group (without
    ``lr``) split the same way, ``SCHEDULE_KEYS`` to the schedule, the rest to the optimizer."""
    knobs = {k: v for k, v in optim_options.items() if k not in SCHEDULE_KEYS}
    schedule = {k: v for k, v in optim_options.items() if k in SCHEDULE_KEYS}
    optimizer = build_population_optimizer(params, lrs=lrs, **knobs)
    return optimizer, build_population_schedule(optimizer, total_updates=total_updates, **schedule)
