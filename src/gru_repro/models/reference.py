"""The units' equations, one plain-autograd loop per unit: the reference to read first.

Each unit's math is stated here once, step by step in ordinary torch ops (tanh RNN, the
paper's GRU, torch.nn's reset-after GRU, the LSTM with or without peepholes), and autograd
derives the backward pass. The fast units (tanh_rnn.py, gru.py, lstm.py: hand-written BPTT
over the loops of kernels.py, C++ or Python) compute the same thing and point here from their
docstrings; tests hold both loop backends to this reference, every output and gradient
(tests/models/test_units_paper.py), and to torch.nn (tests/models/test_nn_torch_match.py). It
is slow: the benchmark times it as the "no hand-written BPTT" alternative, and gru_repro.nn
runs it for gradients of gradients. docs/paper.md writes the same equations with the paper's
names.

Takes a layer built by :func:`gru_repro.models.make_unit` (its parameters, read at call time).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gru_repro.models.gru import GRU
from gru_repro.models.lstm import LSTM
from gru_repro.models.recurrent import RecurrentLayer, input_projection
from gru_repro.models.tanh_rnn import TanhRNN


def reference_forward(layer: RecurrentLayer, x: Tensor, hx=None):
    """Same contract as ``layer(x, hx)``: (T, B, I) -> (out (T, B, H), final state)."""
    batch, hidden = x.shape[1], layer.hidden_size
    zeros = x.new_zeros(batch, hidden)
    outs = []
    if isinstance(layer, LSTM):
        h, c = hx if hx is not None else (zeros, zeros)
        pre = input_projection(x, layer.weight_ih, layer.bias)
        v_i, v_f, v_o = layer.weight_peephole if layer.peephole else (0.0, 0.0, 0.0)
        for t in range(x.shape[0]):
            a_i, a_f, a_g, a_o = (pre[t] + h @ layer.weight_hh.t()).chunk(4, dim=1)
            i = torch.sigmoid(a_i + v_i * c)
            f = torch.sigmoid(a_f + v_f * c)
            c = f * c + i * torch.tanh(a_g)
            h = torch.sigmoid(a_o + v_o * c) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h, c)
    h = hx if hx is not None else zeros
    if isinstance(layer, TanhRNN):
        pre = input_projection(x, layer.weight_ih, layer.bias)
        for t in range(x.shape[0]):
            h = torch.tanh(pre[t] + h @ layer.weight_hh.t())
            outs.append(h)
    elif isinstance(layer, GRU) and layer.reset_after:
        pre = input_projection(x, layer.weight_ih, layer.bias_ih)
        for t in range(x.shape[0]):
            x_r, x_z, x_n = pre[t].chunk(3, dim=1)
            h_r, h_z, h_n = torch.addmm(layer.bias_hh, h, layer.weight_hh.t()).chunk(3, dim=1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
            outs.append(h)
    elif isinstance(layer, GRU):
        pre = input_projection(x, layer.weight_ih, layer.bias)
        u_rz, u_n = layer.weight_hh[: 2 * hidden], layer.weight_hh[2 * hidden :]
        for t in range(x.shape[0]):
            rz = torch.sigmoid(pre[t, :, : 2 * hidden] + h @ u_rz.t())
            r, z = rz.chunk(2, dim=1)
            cand = torch.tanh(pre[t, :, 2 * hidden :] + (r * h) @ u_n.t())
            h = (1 - z) * h + z * cand
            outs.append(h)
    else:
        raise TypeError(f"no reference loop for {type(layer).__name__}")
    return torch.stack(outs), h
