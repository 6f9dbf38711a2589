"""GRU, LSTM and RNN with torch.nn's constructors and forward, run by the project's units.

See :mod:`gru_repro.nn` for what they accept and return.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gru_repro.models.gru import GRU as GRUUnit
from gru_repro.models.lstm import LSTM as LSTMUnit
from gru_repro.models.recurrent import RecurrentLayer
from gru_repro.models.tanh_rnn import TanhRNN
from gru_repro.nn.base import RecurrentFront


def _weights(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """``weight_ih`` and ``weight_hh`` as they are."""
    return {"weight_ih": params["weight_ih"], "weight_hh": params["weight_hh"]}


def _summed_bias(params: dict[str, Tensor], like: Tensor, size: int) -> Tensor:
    """One bias per gate from torch.nn's two (their sum; zeros when bias=False)."""
    if "bias_ih" in params:
        return params["bias_ih"] + params["bias_hh"]
    return like.new_zeros(size)


class GRU(RecurrentFront):
    """Drop-in ``torch.nn.GRU``; the paper's GRU unless ``reset_after=True``.

    ``reset_after=False`` (default), the paper's form (Cho et al. 2014): the reset gate acts
    on h before the recurrent product, one bias per gate (``bias_l{k}``, 3H). ``reset_after=True``
    is torch.nn.GRU's form (``bias_ih_l{k}`` and ``bias_hh_l{k}``), and loads its state_dict.
    The equations are in :class:`gru_repro.models.GRU`.
    """

    unit_name = "GRU"

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
        reset_after: bool = False,
        init: str = "paper",
    ) -> None:
        if not isinstance(reset_after, bool):
            raise ValueError(f"reset_after must be True or False, got {reset_after!r}")
        self.reset_after = reset_after
        self.torch_form = reset_after
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            init=init,
        )

    torch_form_hint = (
        "this is the paper's GRU (one bias per gate); a torch.nn.GRU state_dict loads into "
        "gru_repro.nn.GRU(..., reset_after=True)"
    )

    def _make_unit(self, input_size: int, **factory) -> RecurrentLayer:
        return GRUUnit(
            input_size, self.hidden_size, reset_after=self.reset_after, init=self.init, **factory
        )

    def _cell_shapes(self, input_size: int):
        gates = 3 * self.hidden_size
        shapes = [("weight_ih", (gates, input_size)), ("weight_hh", (gates, self.hidden_size))]
        if self.bias:
            names = ("bias_ih", "bias_hh") if self.reset_after else ("bias",)
            shapes += [(name, (gates,)) for name in names]
        return shapes

    def _unit_weights(self, params: dict[str, Tensor], like: Tensor) -> dict[str, Tensor]:
        weights = _weights(params)
        gates = 3 * self.hidden_size
        for name in ("bias_ih", "bias_hh") if self.reset_after else ("bias",):
            weights[name] = params[name] if self.bias else like.new_zeros(gates)
        return weights

    def extra_repr(self) -> str:
        return super().extra_repr() + f", reset_after={self.reset_after}"


class LSTM(RecurrentFront):
    """Drop-in ``torch.nn.LSTM``; the paper's peephole LSTM unless ``peephole=False``.

    ``peephole=True`` (default), the paper's form (Graves 2013): diagonal peepholes
    ``weight_peephole_l{k}`` (3, H) = [V_i; V_f; V_o] and one bias per gate (``bias_l{k}``, 4H).
    ``peephole=False`` is torch.nn.LSTM (``bias_ih_l{k}``, ``bias_hh_l{k}``, summed into the
    unit's one bias), and loads its state_dict. ``proj_size`` must be 0. The equations are in
    :class:`gru_repro.models.LSTM`.
    """

    unit_name = "LSTM"
    num_states = 2

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        peephole: bool = True,
        init: str = "paper",
    ) -> None:
        if proj_size != 0:
            raise ValueError(f"proj_size={proj_size!r} is not supported (only 0)")
        if not isinstance(peephole, bool):
            raise ValueError(f"peephole must be True or False, got {peephole!r}")
        self.peephole = peephole
        self.torch_form = not peephole
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            init=init,
        )

    torch_form_hint = (
        "this is the paper's peephole LSTM; a torch.nn.LSTM state_dict loads into "
        "gru_repro.nn.LSTM(..., peephole=False)"
    )

    def _make_unit(self, input_size: int, **factory) -> RecurrentLayer:
        return LSTMUnit(
            input_size, self.hidden_size, peephole=self.peephole, init=self.init, **factory
        )

    def _cell_shapes(self, input_size: int):
        gates, hidden = 4 * self.hidden_size, self.hidden_size
        shapes = [("weight_ih", (gates, input_size)), ("weight_hh", (gates, hidden))]
        if self.bias:
            names = ("bias",) if self.peephole else ("bias_ih", "bias_hh")
            shapes += [(name, (gates,)) for name in names]
        if self.peephole:
            shapes.append(("weight_peephole", (3, hidden)))
        return shapes

    def _unit_weights(self, params: dict[str, Tensor], like: Tensor) -> dict[str, Tensor]:
        weights = _weights(params)
        gates = 4 * self.hidden_size
        if self.peephole:
            weights["bias"] = params["bias"] if self.bias else like.new_zeros(gates)
            weights["weight_peephole"] = params["weight_peephole"]
        else:
            weights["bias"] = _summed_bias(params, like, gates)
        return weights

    def extra_repr(self) -> str:
        return super().extra_repr() + f", peephole={self.peephole}"


class RNN(RecurrentFront):
    """Drop-in ``torch.nn.RNN`` for ``nonlinearity="tanh"`` (the paper's tanh RNN).

    Parameters as torch.nn.RNN's (``bias_ih_l{k}``, ``bias_hh_l{k}``, summed into the unit's
    one bias), so its state_dict loads. ``nonlinearity="relu"`` is refused.
    """

    unit_name = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        init: str = "paper",
    ) -> None:
        if nonlinearity != "tanh":
            raise ValueError(
                f"nonlinearity={nonlinearity!r} is not supported: gru_repro.nn.RNN is the "
                "tanh RNN only (use torch.nn.RNN for relu)"
            )
        self.nonlinearity = nonlinearity
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            init=init,
        )

    def _make_unit(self, input_size: int, **factory) -> RecurrentLayer:
        return TanhRNN(input_size, self.hidden_size, init=self.init, **factory)

    def _cell_shapes(self, input_size: int):
        hidden = self.hidden_size
        shapes = [("weight_ih", (hidden, input_size)), ("weight_hh", (hidden, hidden))]
        if self.bias:
            shapes += [("bias_ih", (hidden,)), ("bias_hh", (hidden,))]
        return shapes

    def _unit_weights(self, params: dict[str, Tensor], like: Tensor) -> dict[str, Tensor]:
        weights = _weights(params)
        weights["bias"] = _summed_bias(params, like, self.hidden_size)
        return weights
