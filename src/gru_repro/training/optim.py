"""Optimizers and learning-rate schedules: the paper's plain RMSProp and the released code's form.

The paper only says "RMSProp" with a learning rate picked out of exp(U(-12, -6)) (docs/paper.md,
"Training protocol" and "The released code"). Two forms:

- ``rmsprop``: ``torch.optim.RMSprop`` with every knob passed explicitly from the config.
- ``rmsprop_released``: the first author's released code (librnn, ``RMSPropMomentum``), which
  ``torch.optim.RMSprop`` cannot express because it divides by ``max(rms, floor)`` instead of
  ``sqrt(avg) + eps``::

      avg_t = decay * avg_{t-1} + (1 - decay) * g_t**2
      v_t   = momentum * v_{t-1} - lr * g_t / max(sqrt(avg_t), floor)
      p_t   = p_{t-1} + v_t

  with momentum 0.9, decay 0.95, floor 0.01, and the learning rate decayed linearly to 1%
  over the epoch budget (``torch.optim.lr_scheduler.LinearLR``). ``max_update_norm`` (the
  released code's ``momentum_clipping: 1`` with ``bound_inc: false``) caps the applied update,
  not the velocity: with ``||v_t||`` the L2 norm of every parameter's ``v_t`` together,

      p_t   = p_{t-1} + v_t * min(1, max_update_norm / ||v_t||)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LinearLR, LRScheduler

from gru_repro.training.clipping import global_norm

OPTIMIZERS = ("rmsprop", "rmsprop_released")  # FORMS below
SCHEDULES = ("constant", "linear")


class FlooredRMSprop(Optimizer):
    """RMSProp with momentum that divides by ``max(rms, rms_floor)`` (librnn's form, see above).

    Hand-written because ``torch.optim.RMSprop`` adds ``eps`` to the rms instead of flooring it,
    and applies momentum to the normalised step in a different place.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        decay: float = 0.95,
        momentum: float = 0.9,
        rms_floor: float = 0.01,
        max_update_norm: float | None = None,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {lr}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"optim.decay must be in [0, 1), got {decay}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"optim.momentum must be in [0, 1), got {momentum}")
        if rms_floor <= 0:
            raise ValueError(f"optim.rms_floor must be > 0, got {rms_floor}")
        if max_update_norm is not None and max_update_norm <= 0:
            raise ValueError(f"optim.max_update_norm must be > 0 or null, got {max_update_norm}")
        defaults = {"lr": lr, "decay": decay, "momentum": momentum, "rms_floor": rms_floor}
        super().__init__(params, defaults)
        # one cap over every parameter of every group, so the optimizer's, not a group's (the
        # param groups, and so the state dicts, stay as they were before the cap existed)
        self.max_update_norm = None if max_update_norm is None else float(max_update_norm)
        self.last_update_norm: float | None = None  # ||v_t|| of the last step (the cap's input)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - same contract as torch.optim.Optimizer.step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stepped = []  # (parameter, its velocity) in order, the norm summed in this order
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.zeros_like(p)
                    state["velocity"] = torch.zeros_like(p)
                square_avg, velocity = state["square_avg"], state["velocity"]
                square_avg.mul_(group["decay"]).addcmul_(p.grad, p.grad, value=1 - group["decay"])
                rms = square_avg.sqrt().clamp_(min=group["rms_floor"])
                velocity.mul_(group["momentum"]).addcdiv_(p.grad, rms, value=-group["lr"])
                stepped.append((p, velocity))
        if self.max_update_norm is None:
            for p, velocity in stepped:
                p.add_(velocity)
            return loss
        norm = global_norm([velocity for _, velocity in stepped])
        self.last_update_norm = norm
        scale = update_scale(norm, self.max_update_norm)
        for p, velocity in stepped:
            p.add_(velocity, alpha=scale)
        return loss


def update_scale(norm: float, max_update_norm: float) -> float:
    """``min(1, max_update_norm / norm)``: the factor of an update of L2 norm ``norm`` (1 for
    a non-finite norm, so that a non-finite update stays visible instead of turning into 0)."""
    if math.isfinite(norm) and norm > max_update_norm:
        return max_update_norm / norm
    return 1.0


def plain_rmsprop(
    params: Iterable[Tensor] | Iterable[dict],
    *,
    lr: float,
    alpha: float = 0.95,
    eps: float = 1e-6,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.RMSprop:
    """``torch.optim.RMSprop`` with configs/optim/rmsprop.yaml's defaults (not torch's)."""
    return torch.optim.RMSprop(
        params,
        lr=lr,
        alpha=alpha,
        eps=eps,
        momentum=momentum,
        centered=centered,
        weight_decay=weight_decay,
    )


# optim.name -> the optimizer; each takes only its own knobs, so a knob of the other form is a
# TypeError naming it, not silently ignored
FORMS = {"rmsprop": plain_rmsprop, "rmsprop_released": FlooredRMSprop}
# The optim config's keys that describe the learning-rate schedule (shared by both forms); the
# others are the optimizer's knobs.
SCHEDULE_KEYS = ("schedule", "final_lr_fraction")


def build_optimizer(params: Iterable[Tensor], *, name: str, lr: float, **knobs) -> Optimizer:
    """The optimizer named ``name`` (one of ``OPTIMIZERS``) with its knobs from the config."""
    if lr <= 0:
        raise ValueError(f"optim.lr must be > 0, got {lr}")
    if name not in FORMS:
        raise ValueError(f"unknown optim.name {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    return FORMS[name](params, lr=lr, **knobs)


def build_scheduler(
    optimizer: Optimizer,
    *,
    total_updates: int,
    schedule: str = "constant",
    final_lr_fraction: float = 0.01,
) -> LRScheduler:
    """Per-update schedule: ``constant`` or ``linear`` (lr -> lr * final_lr_fraction at the end;
    ``final_lr_fraction`` has no effect on a constant schedule).

    ``total_updates`` is the epoch budget times the updates per epoch; the scheduler is stepped
    once per update and stays at the final value past the budget.
    """
    if schedule == "constant":
        return LambdaLR(optimizer, lambda _: 1.0)
    if schedule == "linear":
        if not 0.0 < final_lr_fraction <= 1.0:
            raise ValueError(f"optim.final_lr_fraction must be in (0, 1], got {final_lr_fraction}")
        return LinearLR(
            optimizer,
            start_factor=1.0,
            end_factor=final_lr_fraction,
            total_iters=max(1, total_updates),
        )
    raise ValueError(f"unknown optim.schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}")


def build_optimization(
    params: Iterable[Tensor], optim_options: Mapping[str, Any], *, total_updates: int
) -> tuple[Optimizer, LRScheduler]:
    """The whole ``optim`` config group as an optimizer and its per-update schedule: the keys in
    ``SCHEDULE_KEYS`` go to ``build_scheduler``, the others to ``build_optimizer``."""
    knobs = {k: v for k, v in optim_options.items() if k not in SCHEDULE_KEYS}
    schedule = {k: v for k, v in optim_options.items() if k in SCHEDULE_KEYS}
    optimizer = build_optimizer(params, **knobs)
    return optimizer, build_scheduler(optimizer, total_updates=total_updates, **schedule)
