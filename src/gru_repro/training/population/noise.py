"""Weight noise for a stacked model: one draw per update, shared by every member.

The members of a population share the seed, so the single runs they stand for draw the same
noise: ``WeightNoise.draw`` (training/weight_noise.py) gives, per selected parameter in
``named_parameters`` order, ``torch.randn(shape, generator=gen) * std`` converted to the
parameter's dtype and device. Here that draw is made once with one member's shape and added to
every member's row by broadcasting (``stacked + eps[None]``: the same elementwise sum as the
single run's ``param + eps``).

The stacked model must name its parameters as the single model does and list them in the same
order (the draws are consumed in that order).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gru_repro.training.weight_noise import RECURRENT_SUFFIXES


def noisy_member_parameter_names(model: nn.Module, *, include_head: bool = False) -> list[str]:
    """``weight_noise.noisy_parameter_names`` for a stacked model: the same names, the head's
    "two or more dimensions" judged on one member's shape (the leading member dim dropped)."""
    names = []
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith(RECURRENT_SUFFIXES) or (
            include_head and name.startswith("head.") and param.dim() - 1 >= 2
        ):
            names.append(name)
    return names


class PopulationWeightNoise:
    """``WeightNoise`` for a stacked model (parameters (P, ...)); ``std == 0`` turns it off.

    ``seed``: the single run's noise seed (its seed + ``NOISE_SEED_OFFSET``), shared by all
    members. The generator's state goes in ``state_dict`` so a resumed population continues
    the stream.
    """

    def __init__(
        self, model: nn.Module, *, std: float, seed: int, include_head: bool = False
    ) -> None:
        if std < 0:
            raise ValueError(f"trainer.weight_noise must be >= 0 (0 turns it off), got {std}")
        self.model = model
        self.std = float(std)
        self.names = noisy_member_parameter_names(model, include_head=include_head) if std else []
        self.generator = torch.Generator().manual_seed(int(seed))

    @property
    def active(self) -> bool:
        return self.std > 0 and bool(self.names)

    def draw(self, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One member-shaped noise tensor per selected parameter: the single run's draw."""
        gen = generator if generator is not None else self.generator
        params = dict(self.model.named_parameters())
        return {
            name: (torch.randn(params[name].shape[1:], generator=gen) * self.std).to(params[name])
            for name in self.names
        }

    def noisy_parameters(self, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """{name: stacked parameter + noise} for one fresh draw, differentiable in the
        parameter (for ``torch.func.functional_call``); {} when the noise is off."""
        if not self.active:
            return {}
        params = dict(self.model.named_parameters())
        return {name: params[name] + eps for name, eps in self.draw(generator).items()}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
