"""Test helpers shared by test_clipping.py and test_train_loop.py: an exploding gradient path,
and faults put into a model's training forwards through torch's public forward hooks (the
trainer's own code runs unchanged)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


class Amplify(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``factor`` (an exploding path)."""

    @staticmethod
    def forward(ctx, x, factor: float):
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def change_training_forwards(
    model: nn.Module, change: Callable[[int, Any], Any]
) -> RemovableHandle:
    """Replace the output of the n-th training-mode forward of ``model`` (n = 1, 2, ...: one per
    update) by ``change(n, output)``; evaluation forwards (``model.eval()``) are left alone.
    ``change`` may also raise, to crash the run mid-epoch."""
    count = itertools.count(1)

    def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
        return change(next(count), output) if module.training else None

    return model.register_forward_hook(hook)


def amplified_gradients(model: nn.Module, factor: float = 1e20) -> RemovableHandle:
    """Every training forward of a ``SequenceModel`` multiplies its backward by ``factor``
    twice (1e40 itself is beyond float32), so every update's gradient overflows float32 and
    must be rescued."""

    def amplify(_: int, output: tuple) -> tuple:
        head_params, state = output
        return Amplify.apply(Amplify.apply(head_params, factor), factor), state

    return change_training_forwards(model, amplify)
