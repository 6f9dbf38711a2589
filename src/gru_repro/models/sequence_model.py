"""Unit + output head: predicts frame t+1 from frames 1..t; and ``build_model``."""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor, nn

from gru_repro.models.heads import get_head_class
from gru_repro.models.params import count_module_parameters, match_hidden_size
from gru_repro.models.units import make_unit

log = logging.getLogger(__name__)

State = Any  # (B, H) for tanh / gru, a pair (h, c) of (B, H) for lstm


class SequenceModel(nn.Module):
    """A recurrent layer ``rnn`` followed by an output head ``head``.

    ``forward(inputs (T, B, I), state)`` returns the head's parameters for every step (what
    the distribution of the *next* frame is) and the final state; carrying the state into the
    next call continues the sequence exactly (sampling feeds one frame at a time).
    """

    def __init__(self, rnn: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = head

    @property
    def hidden_size(self) -> int:
        return self.rnn.hidden_size

    def forward(self, inputs: Tensor, state: State = None) -> tuple[Tensor, State]:
        hidden, state = self.rnn(inputs, state)  # (T, B, H)
        return self.head(hidden), state

    def step_nll(self, batch: Any) -> Tensor:
        """(T, B) NLL in nats of each target frame, 0 where ``batch.mask`` is False.

        ``batch`` has ``inputs`` (T, B, I), ``targets`` (T, B, D), ``mask`` (T, B) bool. Padding
        sits after each sequence's last step, so it cannot change the real steps' outputs.
        """
        params, _ = self(batch.inputs)
        nll = self.head.nll(params, batch.targets)  # (T, B)
        return nll.masked_fill(~batch.mask, 0.0)


def build_model(
    unit: str,
    input_size: int,
    output_size: int,
    *,
    hidden_size: int | None = None,
    budget: int | None = None,
    head: str = "bernoulli",
    init: str = "paper",
    head_options: dict[str, Any] | None = None,
    **unit_options: Any,
) -> SequenceModel:
    """Build ``unit`` ('tanh', 'gru', 'lstm') with a ``head``, sized by exactly one of
    ``hidden_size`` or ``budget`` (recurrent-layer parameters, as the paper's Table 1).

    ``unit_options``: ``reset_after`` (gru), ``peephole`` (lstm); ``head_options`` go to the
    head's constructor (e.g. ``n_components`` for ``gmm``).
    """
    if (hidden_size is None) == (budget is None):
        raise ValueError(
            f"set exactly one of model.hidden_size and model.budget (got hidden_size="
            f"{hidden_size!r}, budget={budget!r}); set the other to null"
        )
    head_class = get_head_class(head)  # fails early on an unknown head name
    if budget is not None:
        hidden_size = match_hidden_size(unit, input_size, budget, **unit_options)
    rnn = make_unit(unit, input_size, hidden_size, init=init, **unit_options)
    model = SequenceModel(rnn, head_class(hidden_size, output_size, **(head_options or {})))
    counts = count_module_parameters(model)
    log.info(
        "%s: %d hidden units, %d recurrent-layer parameters, %d in all",
        unit,
        hidden_size,
        counts["recurrent_layer"],
        counts["total"],
    )
    return model
