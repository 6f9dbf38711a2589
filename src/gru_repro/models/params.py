"""Parameter counts by part, and the hidden size that matches a parameter budget.

The paper matches units by the parameter count of the *recurrent layer* (Table 1: input-to-
hidden, recurrent, peephole and bias parameters; the output layer is not counted). With a
G-gate unit, I inputs and H hidden units::

    input_to_hidden = G * H * I        recurrent = G * H * H        bias = G * H
    peephole        = 3 * H            (LSTM with peepholes only; diagonal V_i, V_f, V_o)

so speech (I = 20) gives tanh 400 -> 168,400, GRU 227 -> 168,888, LSTM 195 -> 169,065.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gru_repro.models.heads import get_head_class
from gru_repro.models.units import UNITS, check_unit

PARTS = ("input_to_hidden", "recurrent", "peephole", "bias", "output")


def count_parameters(
    unit: str,
    input_size: int,
    hidden_size: int,
    output_size: int = 0,
    *,
    head: str = "bernoulli",
    head_options: dict[str, Any] | None = None,
    **unit_options: Any,
) -> dict[str, int]:
    """Parameters by part for a unit of ``hidden_size`` units; ``output_size=0`` skips the head.

    Returns a dict with the :data:`PARTS`, ``recurrent_layer`` (everything but the output,
    what Table 1 counts) and ``total``.
    """
    options = check_unit(unit, unit_options)
    gate_rows = UNITS[unit].num_gates * hidden_size
    counts = {
        "input_to_hidden": gate_rows * input_size,
        "recurrent": gate_rows * hidden_size,
        "peephole": 3 * hidden_size if unit == "lstm" and options["peephole"] else 0,
        "bias": gate_rows * (2 if unit == "gru" and options["reset_after"] else 1),
        "output": 0,
    }
    if output_size:
        with torch.device("meta"):  # shapes only, no memory or init cost
            module = get_head_class(head)(hidden_size, output_size, **(head_options or {}))
        counts["output"] = sum(p.numel() for p in module.parameters())
    counts["recurrent_layer"] = sum(counts[p] for p in PARTS if p != "output")
    counts["total"] = counts["recurrent_layer"] + counts["output"]
    return counts


def count_module_parameters(model: nn.Module) -> dict[str, int]:
    """The same parts counted from a built model's parameter names (``rnn.*`` and ``head.*``)."""
    counts = dict.fromkeys(PARTS, 0)
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if not name.startswith("rnn."):
            part = "output"
        elif leaf == "weight_ih":
            part = "input_to_hidden"
        elif leaf == "weight_hh":
            part = "recurrent"
        elif leaf == "weight_peephole":
            part = "peephole"
        else:
            part = "bias"
        counts[part] += param.numel()
    counts["recurrent_layer"] = sum(counts[p] for p in PARTS if p != "output")
    counts["total"] = counts["recurrent_layer"] + counts["output"]
    return counts


def match_hidden_size(unit: str, input_size: int, budget: int, **unit_options: Any) -> int:
    """The hidden size whose recurrent-layer count is nearest ``budget`` (ties: the smaller)."""
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"parameter budget must be a positive int, got {budget!r}")

    def count(hidden: int) -> int:
        return count_parameters(unit, input_size, hidden, **unit_options)["recurrent_layer"]

    hidden = 1
    while count(hidden) < budget:  # counts grow with H; budgets are < 1e7, so this is short
        hidden += 1
    if hidden > 1 and budget - count(hidden - 1) <= count(hidden) - budget:
        return hidden - 1
    return hidden
