"""Shared base of the torch.nn-style fronts: parameters, checks, layers and directions.

Parameters are named as in torch.nn (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``, ``_reverse`` for the backward direction); the paper's forms have one bias
per gate, ``bias_l{k}``, and the peephole LSTM ``weight_peephole_l{k}``. Each call of a layer
and direction hands the current attributes to that layer's parameterless unit (see
:mod:`gru_repro.nn.unit_call`), so ``functional_call`` on the front sees swapped weights too.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from gru_repro.models.recurrent import INITS, RecurrentLayer
from gru_repro.nn.directions import run_packed, run_padded
from gru_repro.nn.inputs import prepare_input, prepare_state
from gru_repro.nn.unit_call import State, run_unit


class RecurrentFront(nn.Module):
    """Multi-layer, optionally bidirectional stack of one project unit; see the subclasses.

    Subclasses set ``unit_name``, ``num_states``, ``torch_form`` (and ``torch_form_hint``
    where False) and implement ``_make_unit``, ``_cell_shapes`` and ``_unit_weights``.
    """

    unit_name = ""  # as in error messages: "GRU", "LSTM", "RNN"
    num_states = 1  # 2 for the LSTM: (h, c)
    torch_form = True  # whether a torch.nn state_dict of the same sizes loads

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        init: str = "paper",
    ) -> None:
        super().__init__()
        for name, flag in (
            ("bias", bias),
            ("batch_first", batch_first),
            ("bidirectional", bidirectional),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        if (
            not isinstance(dropout, numbers.Real)
            or isinstance(dropout, bool)
            or not 0.0 <= dropout <= 1.0
        ):
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout={dropout} acts between layers only (not after the last), so it "
                "does nothing with num_layers=1",
                stacklevel=3,
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout, self.init, self.proj_size = float(dropout), init, 0
        self.num_directions = 2 if bidirectional else 1
        # Parameterless units on the meta device, one per layer (a plain tuple: not
        # submodules, so they are neither in state_dict nor moved by .to()).
        sizes = [input_size] + [self.num_directions * hidden_size] * (num_layers - 1)
        self._units = tuple(self._make_unit(size, device="meta") for size in sizes)
        self._unit_names = tuple(name for name, _ in self._units[0].named_parameters())
        # Per (layer, direction), index layer * D + direction: short name -> attribute name.
        self._cells: list[dict[str, str]] = []
        for layer, size in enumerate(sizes):
            for suffix in ("", "_reverse")[: self.num_directions]:
                names = {}
                for short, shape in self._cell_shapes(size):
                    names[short] = f"{short}_l{layer}{suffix}"
                    param = torch.empty(shape, device=device, dtype=dtype)
                    self.register_parameter(names[short], nn.Parameter(param))
                self._cells.append(names)
        self.register_load_state_dict_pre_hook(_hint_torch_form)
        self.reset_parameters()

    # -- subclass hooks -------------------------------------------------------------------

    def _make_unit(self, input_size: int, **factory) -> RecurrentLayer:
        """The project unit of this form for one layer (``init`` as given)."""
        raise NotImplementedError

    def _cell_shapes(self, input_size: int) -> list[tuple[str, tuple[int, ...]]]:
        """(name without layer suffix, shape) of one layer and direction's parameters."""
        raise NotImplementedError

    def _unit_weights(self, params: dict[str, Tensor], like: Tensor) -> dict[str, Tensor]:
        """The unit's parameters from the front's (short names); zeros where bias=False."""
        raise NotImplementedError

    # -- parameters -----------------------------------------------------------------------

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """``init="torch"``: torch.nn's U(-1/sqrt(H), 1/sqrt(H)) on every parameter.
        ``init="paper"``: each layer's weights as the project's unit initialises them
        (``weight_ih`` U(-0.1, 0.1), each H x H block of ``weight_hh`` orthogonal), biases
        and peepholes 0."""
        if self.init == "torch":
            bound = 1.0 / math.sqrt(self.hidden_size)
            for param in self.parameters():
                nn.init.uniform_(param, -bound, bound)
            return
        for index, names in enumerate(self._cells):
            first = getattr(self, names["weight_ih"])
            unit = self._make_unit(
                self._units[index // self.num_directions].input_size,
                device=first.device,
                dtype=first.dtype,
            )
            for short, name in names.items():
                if short in ("weight_ih", "weight_hh"):
                    getattr(self, name).copy_(getattr(unit, short))
                else:
                    getattr(self, name).zero_()

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Parameters per layer and direction, in torch.nn's order."""
        return [[getattr(self, name) for name in names.values()] for names in self._cells]

    def flatten_parameters(self) -> None:
        """Nothing to do (kept so code written for torch.nn's cuDNN path runs unchanged)."""

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text + f", init={self.init!r}"

    # -- forward --------------------------------------------------------------------------

    def forward(self, input: Tensor | PackedSequence, hx=None):
        packed = isinstance(input, PackedSequence)
        x, layout, unbatched = prepare_input(self, input)
        batch = int(input.batch_sizes[0]) if packed else x.shape[1]
        states = prepare_state(self, hx, x, batch, unbatched)  # each (L*D, B, H)
        if packed and input.sorted_indices is not None:
            states = tuple(s.index_select(1, input.sorted_indices) for s in states)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                run = self._runner(index)
                state = tuple(s[index] for s in states)
                if packed:
                    out, final = run_packed(run, x, layout, state, reverse=direction == 1)
                else:
                    out, final = run_padded(run, x, state, reverse=direction == 1)
                outs.append(out)
                finals.append(final)
            x = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
            if layer < self.num_layers - 1 and self.dropout > 0:
                x = nn.functional.dropout(x, self.dropout, training=self.training)
        final_states = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        if packed:
            if input.unsorted_indices is not None:
                final_states = tuple(
                    s.index_select(1, input.unsorted_indices) for s in final_states
                )
            output = PackedSequence(
                x, input.batch_sizes, input.sorted_indices, input.unsorted_indices
            )
        elif unbatched:
            output, final_states = x.squeeze(1), tuple(s.squeeze(1) for s in final_states)
        else:
            output = x.transpose(0, 1) if self.batch_first else x
        return output, self._pack_state(final_states)

    def _pack_state(self, states: State):
        """The state as the caller sees it: h (GRU, RNN) or (h, c) (LSTM)."""
        return states if self.num_states == 2 else states[0]

    def _runner(self, index: int):
        names = self._cells[index]
        unit = self._units[index // self.num_directions]

        def run(x: Tensor, state: State) -> tuple[Tensor, State]:
            params = {short: getattr(self, name) for short, name in names.items()}
            weights = self._unit_weights(params, x)
            return run_unit(
                unit, self._unit_names, x, state, tuple(weights[n] for n in self._unit_names)
            )

        return run


def _hint_torch_form(
    module: RecurrentFront,
    state_dict,
    prefix,
    local_metadata,
    strict,
    missing_keys,
    unexpected_keys,
    error_msgs,
) -> None:
    """Say which option loads a torch.nn state_dict when one is loaded into a paper form
    (recognised by layer 0's ``weight_ih`` present, but not all of the paper form's keys)."""
    if strict and not module.torch_form and f"{prefix}weight_ih_l0" in state_dict:
        if any(f"{prefix}{name}" not in state_dict for name in module._cells[0].values()):
            error_msgs.append(module.torch_form_hint)
