"""A test helper for the population tests: a stacked stand-in for a single model.

The real stacked models are built elsewhere; what the population machinery needs of one is only
that it names its parameters as the single model does, in the same order, each of shape
(P, *single shape). ``StackedParameters`` is exactly that, built from P single models.
"""

from __future__ import annotations

import torch
from torch import nn

from gru_repro.models import build_model


class StackedParameters(nn.Module):
    """Holds ``torch.stack`` of the members' parameters under the single model's names."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        for name, _ in models[0].named_parameters():
            owner = self
            *path, leaf = name.split(".")
            for part in path:
                if not hasattr(owner, part):
                    owner.add_module(part, nn.Module())
                owner = getattr(owner, part)
            values = [dict(m.named_parameters())[name].detach() for m in models]
            owner.register_parameter(leaf, nn.Parameter(torch.stack(values).clone()))


def single_models(unit: str, members: int, dtype=torch.float32, seeds=None) -> list[nn.Module]:
    """``members`` music models (88 in and out, small hidden layer), seed k for member k."""
    models = []
    for k in range(members):
        torch.manual_seed(k if seeds is None else seeds[k])
        models.append(build_model(unit, 88, 88, hidden_size=6).to(dtype))
    return models
