"""The paper's recurrent units, output heads, parameter matching and the sequence model."""

from gru_repro.models.gru import GRU
from gru_repro.models.heads import HEADS, BernoulliHead, get_head_class
from gru_repro.models.lstm import LSTM
from gru_repro.models.params import (
    count_module_parameters,
    count_parameters,
    match_hidden_size,
)
from gru_repro.models.sequence_model import SequenceModel, build_model
from gru_repro.models.tanh_rnn import TanhRNN

# the fused population registers itself in population.FUSED_POPULATIONS (build_population's
# default for the units and head it runs)
from gru_repro.models import population_fused  # noqa: E402, F401  isort: skip
from gru_repro.models.units import UNIT_OPTIONS, UNITS, make_unit

__all__ = [
    "GRU",
    "HEADS",
    "LSTM",
    "UNITS",
    "UNIT_OPTIONS",
    "BernoulliHead",
    "SequenceModel",
    "TanhRNN",
    "build_model",
    "count_module_parameters",
    "count_parameters",
    "get_head_class",
    "make_unit",
    "match_hidden_size",
]
