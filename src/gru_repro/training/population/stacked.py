"""The stacked-optimizer machinery both population RMSProp forms share (population/optim.py):
P members' parameters stacked along a leading dimension, one learning rate per member, state
rows per member, dropping members, plain-data state.

The learning-rate op is a fused kernel in the single run (``add_(alpha=-lr)``: one FMA;
``addcdiv_(value=-lr)``: ``(-lr * g) / d`` rounded twice). Its vectorised form, with a
(P, 1, ...) tensor of -lr, is ``addcmul_`` for the first (measured: the same FMA on this CPU
build, float32 and float64) and ``addcdiv_(g * -lr, d)`` for the second.
:func:`vectorised_lr_ops_are_exact` measures once per (dtype, device) whether this build's
kernels agree; where they do not, the op runs per member on its contiguous slice with the very
call the single run makes (``lr_update="per_member"``, what ``"auto"`` then picks).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

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
        self._neg_lr_cache: tuple = (None, None)
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
        is converted to the tensor's dtype the same way. Made once per (lrs, dtype, device)."""
        key = (tuple(self.lrs), p.dtype, p.device)
        if self._neg_lr_cache[0] != key:
            values = torch.tensor([-lr for lr in self.lrs], dtype=p.dtype, device=p.device)
            self._neg_lr_cache = (key, values)
        return self._neg_lr_cache[1].view((self.members,) + (1,) * (p.dim() - 1))

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

    def _add_member_scaled(self, p: Tensor, update: Tensor, scales: Sequence[float]) -> None:
        """``p[k].add_(update[k], alpha=scales[k])`` for every member k (the same vectorised
        form as ``_add_lr_scaled``, exact where that is)."""
        if self._vectorised(p):
            view = (self.members,) + (1,) * (p.dim() - 1)
            p.addcmul_(update, torch.tensor(scales, dtype=p.dtype, device=p.device).view(view))
        else:
            for k, scale in enumerate(scales):
                p[k].add_(update[k], alpha=scale)

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
