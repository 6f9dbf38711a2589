"""Checks and layout of the fronts' input and initial state: ValueErrors naming the layout.

``front`` is a :class:`gru_repro.nn.base.RecurrentFront`; its ``unit_name`` leads every message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from gru_repro.nn.directions import PackedLayout
from gru_repro.nn.unit_call import State

if TYPE_CHECKING:
    from gru_repro.nn.base import RecurrentFront


def prepare_input(front: RecurrentFront, input) -> tuple[Tensor, PackedLayout | None, bool]:
    """Time-major x (T, B, I) or packed data (N, I); its layout; whether unbatched."""
    size = front.input_size
    if isinstance(input, PackedSequence):
        data = input.data
        if data.dim() != 2 or data.shape[1] != size:
            raise ValueError(
                f"{front.unit_name} expected PackedSequence data of shape (N, {size}), "
                f"got {tuple(data.shape)}"
            )
        _check_dtype(front, data)
        return data, PackedLayout(input.batch_sizes, data.device), False
    if not isinstance(input, Tensor):
        raise ValueError(
            f"{front.unit_name} expected a Tensor or a PackedSequence, got {type(input).__name__}"
        )
    if input.dim() not in (2, 3) or input.shape[-1] != size:
        layout = "(B, T, {0})" if front.batch_first else "(T, B, {0})"
        raise ValueError(
            f"{front.unit_name} expected input of shape {layout.format(size)} with "
            f"batch_first={front.batch_first} (or (T, {size}) unbatched), got "
            f"{tuple(input.shape)}"
        )
    _check_dtype(front, input)
    unbatched = input.dim() == 2
    x = input.unsqueeze(1) if unbatched else input
    x = x.transpose(0, 1) if front.batch_first and not unbatched else x
    if x.shape[0] == 0:
        raise ValueError(
            f"{front.unit_name} expected at least one time step, got input of shape "
            f"{tuple(input.shape)}"
        )
    return x, None, unbatched


def _check_dtype(front: RecurrentFront, x: Tensor) -> None:
    param = front.all_weights[0][0]  # weight_ih_l0
    if x.dtype != param.dtype or x.device != param.device:
        raise ValueError(
            f"{front.unit_name} got input of {x.dtype} on {x.device} but its parameters "
            f"are {param.dtype} on {param.device}: move one to the other (e.g. "
            f"module.to(input.dtype))"
        )


def prepare_state(front: RecurrentFront, hx, x: Tensor, batch: int, unbatched: bool) -> State:
    """The initial states, each (L*D, B, H): zeros when hx is None."""
    stacks = front.num_layers * front.num_directions
    shape = (stacks, batch, front.hidden_size)
    if hx is None:
        return tuple(x.new_zeros(shape) for _ in range(front.num_states))
    names = ("hx",) if front.num_states == 1 else ("h_0", "c_0")
    if front.num_states == 2:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("LSTM expected hx to be a pair (h_0, c_0) of tensors or None")
        parts = tuple(hx)
    else:
        parts = (hx,)
    expected = (stacks, front.hidden_size) if unbatched else shape
    meaning = "(num_layers * num_directions, " + ("" if unbatched else "B, ")
    meaning += "hidden_size)" + (" for unbatched input" if unbatched else "")
    for name, part in zip(names, parts, strict=True):
        if not isinstance(part, Tensor) or tuple(part.shape) != expected:
            got = tuple(part.shape) if isinstance(part, Tensor) else type(part).__name__
            raise ValueError(
                f"{front.unit_name} expected {name} of shape {expected} {meaning}, got {got}"
            )
    return tuple(p.unsqueeze(1) for p in parts) if unbatched else parts
