"""Weight noise as in the paper: Gaussian, fixed std, drawn once per update.

Hand-written because no library implements the paper's schedule (Graves 2011 style static
noise): at every update one draw ``eps ~ N(0, std^2)`` per selected weight matrix, shared by all
time steps of that update; the loss and its gradients are computed at ``param + eps``, and the
gradients land on the clean ``param``::

    with noisy_weights(model, noise.draw()):  # param += eps in place, for this block only
        loss = batch_loss(model.step_nll(batch), batch.mask)
        loss.backward()  # d loss / d param at param + eps, into param.grad
    # here every param holds its clean value again, bit for bit

In place rather than ``torch.func.functional_call`` with ``param + eps`` copies: both give the same
loss and gradients bit for bit (tests/training/test_weight_noise.py checks it), and in place skips
the re-parametrisation of the module on every update. Two rules follow from autograd saving the
noisy tensors themselves: every backward through the block's graph happens inside the block (a
weight changed in place before its backward is an error torch raises, not a silent wrong gradient),
and the clean values are copied back, not recovered by subtraction (``(p + e) - e != p`` in floating
point).

Selected weights: the input and recurrent matrices (``*.weight_ih``, ``*.weight_hh``, names as
in ``torch.nn``), not biases or peepholes; optionally the output layer's weight matrices
(``head.*`` with two or more dimensions).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn

RECURRENT_SUFFIXES = ("weight_ih", "weight_hh")


def noisy_parameter_names(model: nn.Module, *, include_head: bool = False) -> list[str]:
    """Names of the parameters that receive noise (see the module docstring)."""
    names = []
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith(RECURRENT_SUFFIXES) or (
            include_head and name.startswith("head.") and param.dim() >= 2
        ):
            names.append(name)
    return names


@contextmanager
def noisy_weights(model: nn.Module, noise: Mapping[str, Tensor]) -> Iterator[None]:
    """Add ``noise`` ({parameter name: tensor of its shape}) to ``model``'s parameters in place
    for the block, then copy the clean values back (also when the block raises). An empty
    ``noise`` (weight noise off) changes nothing."""
    params = dict(model.named_parameters())
    clean: dict[str, Tensor] = {}
    with torch.no_grad():
        for name, eps in noise.items():
            clean[name] = params[name].detach().clone()
            params[name].add_(eps)
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in clean.items():
                params[name].copy_(value)


class WeightNoise:
    """Draws the per-update noise from its own seeded generator (so resume can restore it).

    ``std == 0`` turns it off: ``draw`` then returns ``{}`` and draws nothing.
    """

    def __init__(
        self, model: nn.Module, *, std: float, seed: int, include_head: bool = False
    ) -> None:
        if std < 0:
            raise ValueError(f"trainer.weight_noise must be >= 0 (0 turns it off), got {std}")
        self.model = model
        self.std = float(std)
        self.names = noisy_parameter_names(model, include_head=include_head) if std > 0 else []
        self.generator = torch.Generator().manual_seed(int(seed))

    @property
    def active(self) -> bool:
        return self.std > 0 and bool(self.names)

    def draw(self, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One noise tensor per selected parameter, same shape, dtype and device as it; drawn
        on the CPU from ``generator`` (default: this object's own) for reproducibility."""
        if not self.active:
            return {}
        gen = generator if generator is not None else self.generator
        params = dict(self.model.named_parameters())
        return {
            name: (torch.randn(params[name].shape, generator=gen) * self.std).to(params[name])
            for name in self.names
        }

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
