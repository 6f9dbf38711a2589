"""Weight noise as in the paper: Gaussian, fixed std, drawn once per update.

Hand-written because no library implements the paper's schedule (Graves 2011 style static
noise): at every update one draw ``eps ~ N(0, std^2)`` per selected weight matrix, shared by all
time steps of that update; the loss and its gradients are computed at ``param + eps``, and the
gradients land on the clean ``param`` (``param + eps`` is a differentiable function of
``param`` with derivative 1). ``torch.func.functional_call`` swaps the noisy tensors in for one
call without touching the module's parameters.

Selected weights: the input and recurrent matrices (``*.weight_ih``, ``*.weight_hh``, names as
in ``torch.nn``), not biases or peepholes; optionally the output layer's weight matrices
(``head.*`` with two or more dimensions).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

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


class _StepNLL(nn.Module):
    """Lets ``functional_call`` run ``model.step_nll`` (it only calls ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch) -> Tensor:
        return self.model.step_nll(batch)


class WeightNoise:
    """Draws the per-update noise from its own seeded generator (so resume can restore it).

    ``std == 0`` turns it off: ``step_nll`` then calls the model directly and draws nothing.
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
        self._wrapper = _StepNLL(model)

    @property
    def active(self) -> bool:
        return self.std > 0 and bool(self.names)

    def draw(self, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One noise tensor per selected parameter, same shape; CPU draw for reproducibility."""
        gen = generator if generator is not None else self.generator
        params = dict(self.model.named_parameters())
        return {
            name: (torch.randn(params[name].shape, generator=gen) * self.std).to(params[name])
            for name in self.names
        }

    def step_nll(self, batch, generator: torch.Generator | None = None) -> Tensor:
        """``model.step_nll(batch)`` (T, B) at ``param + noise`` for one fresh draw."""
        if not self.active:
            return self.model.step_nll(batch)
        noise = self.draw(generator)
        params = dict(self.model.named_parameters())
        noisy = {f"model.{name}": params[name] + eps for name, eps in noise.items()}
        return functional_call(self._wrapper, noisy, (batch,), strict=False)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
