"""The unit registry: config string -> recurrent layer class, and the options each accepts."""

from __future__ import annotations

from typing import Any

from gru_repro.models.gru import GRU
from gru_repro.models.lstm import LSTM
from gru_repro.models.recurrent import INITS, RecurrentLayer
from gru_repro.models.tanh_rnn import TanhRNN

UNITS: dict[str, type[RecurrentLayer]] = {"tanh": TanhRNN, "gru": GRU, "lstm": LSTM}

# Options beyond (input_size, hidden_size, init) and their defaults (the paper's form).
UNIT_OPTIONS: dict[str, dict[str, Any]] = {
    "tanh": {},
    "gru": {"reset_after": False},
    "lstm": {"peephole": True},
}


def check_unit(unit: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate a unit name and its options; return the options with defaults filled in."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: choose one of {', '.join(UNITS)}")
    allowed = UNIT_OPTIONS[unit]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) or "none"
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for unit {unit!r}: valid options are {valid}"
        )
    for name, value in options.items():
        if not isinstance(value, bool):
            raise ValueError(f"unit option {name} must be true or false, got {value!r}")
    return {**allowed, **options}


def make_unit(
    unit: str, input_size: int, hidden_size: int, *, init: str = "paper", **options: Any
) -> RecurrentLayer:
    """Instantiate the recurrent layer for ``unit`` ('tanh', 'gru' or 'lstm')."""
    options = check_unit(unit, options)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    return UNITS[unit](input_size, hidden_size, init=init, **options)
