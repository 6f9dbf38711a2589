"""Between a population and its members: each member is an ordinary run.

- model state: :func:`member_state_dict` slices member k out of a stacked model's state dict
  into the state dict the single model has (same keys, same shapes); :func:`stack_state_dicts`
  stacks P single-model state dicts into a stacked one.
- optimizer and schedule state: :func:`member_optimizer_state_dict` and
  :func:`member_schedule_state_dict` give member k's state in the form the single run's
  ``torch.optim.RMSprop`` / ``FlooredRMSprop`` and torch scheduler write (and load);
  :func:`load_member_states` builds a population's state back from them. So a member's
  checkpoint is a single run's, and a population can resume from its members' checkpoints.
- :func:`keep_members_` drops members from stacked parameters in place.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from gru_repro.training.optim import build_optimizer, build_scheduler
from gru_repro.training.population.schedule import PopulationSchedule
from gru_repro.training.population.stacked import PopulationOptimizer


def member_state_dict(
    stacked: Mapping[str, Tensor], member: int, *, shared: Collection[str] = ()
) -> dict[str, Tensor]:
    """Member ``member``'s single-model state dict: row ``member`` of every stacked entry,
    ``shared`` keys (not stacked, e.g. a buffer all members share) as they are.

    Cloned: ``torch.save`` of a view would write the whole population's storage.
    """
    return {
        key: (value.clone() if key in shared else value[member].clone())
        for key, value in stacked.items()
    }


def stack_state_dicts(
    states: Sequence[Mapping[str, Tensor]], *, shared: Collection[str] = ()
) -> dict[str, Tensor]:
    """P single-model state dicts stacked along a new leading member dim (``shared`` keys are
    taken once and must be equal in all of them)."""
    if not states:
        raise ValueError("stack_state_dicts needs at least one state dict")
    keys = list(states[0])
    for k, state in enumerate(states):
        if list(state) != keys:
            raise ValueError(f"member {k}'s state dict has keys {list(state)}, member 0's {keys}")
    stacked = {}
    for key in keys:
        values = [state[key] for state in states]
        if key in shared:
            if not all(torch.equal(v, values[0]) for v in values):
                raise ValueError(f"shared state {key!r} differs between members")
            stacked[key] = values[0].clone()
        else:
            stacked[key] = torch.stack(values)
    return stacked


def keep_members_(parameters: Iterable[Tensor], members: Sequence[int]) -> None:
    """Keep rows ``members`` of every stacked parameter, in place (the Parameter objects stay,
    so an optimizer holding them keeps working after its own ``keep(members)``); grads are
    dropped (their shapes no longer fit).

    Only for tensors whose gradients are set by hand: autograd remembers a leaf's shape, so a
    backward through a Parameter resized here fails. A model drops members with
    ``PopulationModel.keep`` (new Parameters; the trainer points its optimizer at them)."""
    index = [int(m) for m in members]
    with torch.no_grad():
        for p in parameters:
            p.data = p.data[index].contiguous()
            p.grad = None


def _single_optimizer(optimizer: PopulationOptimizer, lr: float) -> torch.optim.Optimizer:
    """A single run's optimizer with ``optimizer``'s knobs over empty tensors: the template of
    the param-group entries torch writes (its keys change between torch versions)."""
    dummies = [torch.empty(0, requires_grad=True) for _ in optimizer.params]
    return build_optimizer(dummies, lr=lr, **optimizer.options())


def member_optimizer_state_dict(optimizer: PopulationOptimizer, member: int) -> dict:
    """Member ``member``'s optimizer state as the single run's optimizer's ``state_dict()``."""
    lr, initial_lr = optimizer.lrs[member], optimizer.initial_lrs[member]
    (group,) = _single_optimizer(optimizer, initial_lr).state_dict()["param_groups"]
    group.update(lr=lr, initial_lr=initial_lr)  # initial_lr: set by the run's scheduler
    scalar_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    state = {}
    for i, rows in enumerate(optimizer.state):
        if not rows:
            continue
        entry = {}
        if optimizer.counts_steps:
            entry["step"] = torch.tensor(float(optimizer.steps[i]), dtype=scalar_dtype)
        entry.update({name: t[member].clone() for name, t in rows.items()})
        state[i] = entry
    return {"state": state, "param_groups": [group]}


def member_schedule_state_dict(schedule: PopulationSchedule, member: int) -> dict:
    """Member ``member``'s schedule state as the single run's torch scheduler's
    ``state_dict()`` (its lr itself is in the optimizer's state)."""
    opt = schedule.optimizer
    template = build_scheduler(
        _single_optimizer(opt, opt.initial_lrs[member]),
        schedule=schedule.schedule,
        total_updates=schedule.total_iters,
        final_lr_fraction=schedule.end_factor,
    ).state_dict()
    template.update(
        base_lrs=[opt.initial_lrs[member]],
        last_epoch=schedule.last_epoch,
        _step_count=schedule.last_epoch + 1,  # torch counts its initial step too
        _last_lr=[opt.lrs[member]],
    )
    return template


def load_member_states(
    optimizer: PopulationOptimizer,
    schedule: PopulationSchedule | None,
    optimizer_states: Sequence[dict],
    schedule_states: Sequence[dict] | None = None,
) -> None:
    """Set a population's optimizer (and schedule) state from its members' single-run states
    (``torch.optim`` / scheduler ``state_dict()`` form), member k from entry k."""
    if len(optimizer_states) != optimizer.members:
        raise ValueError(
            f"{len(optimizer_states)} member optimizer states for {optimizer.members} members"
        )
    template = _single_optimizer(optimizer, 1.0).state_dict()["param_groups"][0]
    groups = [state["param_groups"][0] for state in optimizer_states]
    for k, group in enumerate(groups):
        for key, value in template.items():
            if key not in ("lr", "initial_lr", "params") and group.get(key) != value:
                raise ValueError(
                    f"member {k}'s optimizer state has {key}={group.get(key)!r}, "
                    f"the population {value!r}"
                )
    stacked_state: list[dict[str, Tensor]] = []
    steps = []
    for i, p in enumerate(optimizer.params):
        entries = [state["state"].get(i, {}) for state in optimizer_states]
        if not entries[0]:
            stacked_state.append({})
            steps.append(0)
            continue
        names = [n for n in entries[0] if n != "step"]
        stacked_state.append({n: torch.stack([e[n] for e in entries]).to(p) for n in names})
        counts = {int(e["step"]) for e in entries} if optimizer.counts_steps else {0}
        if len(counts) != 1:
            raise ValueError(f"parameter {i}: members stepped different numbers of times {counts}")
        steps.append(counts.pop())
    optimizer.lrs = [float(g["lr"]) for g in groups]
    optimizer.initial_lrs = [float(g.get("initial_lr", g["lr"])) for g in groups]
    optimizer.state, optimizer.steps = stacked_state, steps
    if schedule is not None and schedule_states is not None:
        epochs = {int(s["last_epoch"]) for s in schedule_states}
        if len(epochs) != 1:
            raise ValueError(f"members' schedules are at different steps {sorted(epochs)}")
        schedule.last_epoch = epochs.pop()
