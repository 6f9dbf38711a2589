"""A test helper shared by test_clipping.py and test_train_loop.py: an exploding gradient path."""

from __future__ import annotations

import torch


class Amplify(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``factor`` (an exploding path)."""

    @staticmethod
    def forward(ctx, x, factor: float):
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None
