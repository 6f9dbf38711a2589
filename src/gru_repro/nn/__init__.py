"""torch.nn-compatible GRU, LSTM and RNN running the project's units (its fast loops).

``gru_repro.nn.GRU``, ``LSTM`` and ``RNN`` take torch.nn.GRU / LSTM / RNN's constructor
arguments (``input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
dropout=0.0, bidirectional=False``, ``device``, ``dtype``; RNN's ``nonlinearity`` after
``num_layers``, LSTM's ``proj_size`` (0 only) before ``device``) and forward like them::

    forward(input, hx=None) -> (output, h_n)            GRU, RNN
    forward(input, hx=None) -> (output, (h_n, c_n))     LSTM

    input   (T, B, I), (B, T, I) with batch_first, (T, I) unbatched, or a PackedSequence
    hx      (L*D, B, H) each ((L*D, H) unbatched), zeros when None; LSTM: a pair (h_0, c_0)
    output  (T, B, D*H) (batch_first: (B, T, D*H)), or a PackedSequence like the input
    h_n     (L*D, B, H): each sequence's state after its own last step (with D = 2, the
            backward direction's state after running from that step back to step 0)

with L = num_layers, D = 2 if bidirectional else 1; h_n[k * D + d] is layer k, direction d.
Dropout (training mode only) acts on every layer's output but the last's.

Keyword-only options, the paper's forms by default:

- ``GRU(..., reset_after=False)``: the paper's GRU (reset gate before the recurrent product,
  one bias per gate, ``bias_l{k}``). ``reset_after=True`` is torch.nn.GRU.
- ``LSTM(..., peephole=True)``: the paper's LSTM with diagonal peepholes
  (``weight_peephole_l{k}`` (3, H), one bias per gate ``bias_l{k}``). ``peephole=False`` is
  torch.nn.LSTM.
- ``RNN`` is the tanh RNN (``nonlinearity="relu"`` raises ValueError); always torch.nn.RNN.
- ``init="paper"`` (default): each layer's weights as the project's units initialise them
  (input weights U(-0.1, 0.1), orthogonal recurrent blocks), biases and peepholes 0;
  ``init="torch"``: torch.nn's U(-1/sqrt(H), 1/sqrt(H)) on every parameter.

The torch forms (``GRU(reset_after=True)``, ``LSTM(peephole=False)``, ``RNN``) have exactly
torch.nn's parameters and names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), so a
torch.nn state_dict of the same sizes loads with ``load_state_dict`` and theirs loads into
torch.nn. Shapes that do not fit raise ValueError naming the expected layout.

Gradients: the units' hand-written backward passes. Double backward (``create_graph=True``,
e.g. a gradient penalty) works: such a backward recomputes each layer with the plain-autograd
loops of :mod:`gru_repro.models.reference` and differentiates those. ``torch.jit.script`` is
not supported (the units are ``torch.autograd.Function`` calls); nor are torch.func
transforms (vmap, grad) through the units.
"""

from gru_repro.nn.modules import GRU, LSTM, RNN

__all__ = ["GRU", "LSTM", "RNN"]
