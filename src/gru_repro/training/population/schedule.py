"""Per-member learning-rate schedules, float for float the single run's torch schedulers.

``training.optim.build_scheduler`` gives a single run ``LambdaLR(lambda _: 1.0)`` (constant) or
``LinearLR(start_factor=1.0, end_factor=final_lr_fraction, total_iters=total_updates)``.
LinearLR updates the lr *recursively*, ``lr <- lr * (1 + (end - start) / (total * start +
(k - 1) * (end - start)))`` at its k-th step, so the float after many steps is not the closed
form's. Here the same expression runs on each member's lr, in Python floats like torch's, so
every member's lr is the single run's to the last bit (the factor does not depend on the lr).

Hand-written because torch's schedulers hold the lrs in an optimizer's param groups, and the
population optimizer keeps one lr per member instead.
"""

from __future__ import annotations

from gru_repro.training.optim import SCHEDULES


class PopulationSchedule:
    """Steps ``optimizer.lrs`` (one per member) as torch's scheduler steps one run's lr.

    ``optimizer``: a population optimizer (``lrs`` and ``initial_lrs`` lists of floats). Built
    after the optimizer, it takes its first step at once as torch's schedulers do
    (``last_epoch`` becomes 0). Dropping members (``optimizer.keep``) needs nothing here.
    """

    def __init__(
        self,
        optimizer,
        *,
        schedule: str,
        total_updates: int,
        final_lr_fraction: float = 0.01,
        start_factor: float = 1.0,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(
                f"unknown optim.schedule {schedule!r}: choose one of {', '.join(SCHEDULES)}"
            )
        if schedule == "linear" and not 0.0 < final_lr_fraction <= 1.0:
            raise ValueError(f"optim.final_lr_fraction must be in (0, 1], got {final_lr_fraction}")
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        self.optimizer = optimizer
        self.schedule = schedule
        self.start_factor = float(start_factor)
        self.end_factor = float(final_lr_fraction)
        self.total_iters = max(1, int(total_updates))  # as build_scheduler passes it
        self.last_epoch = -1
        self.step()

    def _next_lrs(self) -> list[float]:
        opt, k = self.optimizer, self.last_epoch
        if self.schedule == "constant":  # LambdaLR: base_lr * lambda(k), lambda = 1.0
            return [base * 1.0 for base in opt.initial_lrs]
        # torch.optim.lr_scheduler.LinearLR.get_lr, expression for expression
        if k == 0:
            return [lr * self.start_factor for lr in opt.lrs]
        if k > self.total_iters:
            return list(opt.lrs)
        start, end = self.start_factor, self.end_factor
        factor = 1.0 + (end - start) / (self.total_iters * start + (k - 1) * (end - start))
        return [lr * factor for lr in opt.lrs]

    def step(self) -> None:
        """After ``optimizer.step()``, once per update (torch's ``scheduler.step()``)."""
        self.last_epoch += 1
        self.optimizer.lrs = self._next_lrs()

    def last_lrs(self) -> list[float]:
        """The members' current lrs (torch's ``get_last_lr()``, one entry per member)."""
        return list(self.optimizer.lrs)

    def state_dict(self) -> dict:
        return {
            "schedule": self.schedule,
            "start_factor": self.start_factor,
            "end_factor": self.end_factor,
            "total_iters": self.total_iters,
            "last_epoch": self.last_epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state_dict()`` (the lrs themselves live in the optimizer's state)."""
        mine = self.state_dict()
        for key in ("schedule", "start_factor", "end_factor", "total_iters"):
            if state[key] != mine[key]:
                raise ValueError(
                    f"population schedule state has {key}={state[key]!r}, "
                    f"this schedule {mine[key]!r}"
                )
        self.last_epoch = int(state["last_epoch"])


def build_population_schedule(
    optimizer, *, total_updates: int, schedule: str = "constant", final_lr_fraction: float = 0.01
) -> PopulationSchedule:
    """``training.optim.build_scheduler`` for a population optimizer."""
    return PopulationSchedule(
        optimizer,
        schedule=schedule,
        total_updates=total_updates,
        final_lr_fraction=final_lr_fraction,
    )
