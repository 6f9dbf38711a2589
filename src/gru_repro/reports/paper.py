"""The paper's Table 2, typed in once with its source, to print beside our numbers.

Source: Chung, Gulcehre, Cho & Bengio (2014), arXiv:1412.3555, Table 2 ("The average negative
log-probabilities of the training and test sets"), nats per time step, single runs; the same
table, with the protocol behind it, is in docs/paper.md ("Table 2").
The speech rows are Ubisoft A / B, internal corpora we replace by FSDD: beside ours for the
ranking of the units only, the numbers are not comparable.
"""

from __future__ import annotations

PAPER_SOURCE = "Chung et al. 2014, arXiv:1412.3555, Table 2 (nats per time step, single runs)"

# experiment -> split -> unit -> NLL
PAPER_TABLE2: dict[str, dict[str, dict[str, float]]] = {
    "music/nottingham": {
        "train": {"tanh": 3.22, "gru": 2.79, "lstm": 3.08},
        "test": {"tanh": 3.13, "gru": 3.23, "lstm": 3.20},
    },
    "music/jsb": {
        "train": {"tanh": 8.82, "gru": 6.94, "lstm": 8.15},
        "test": {"tanh": 9.10, "gru": 8.54, "lstm": 8.67},
    },
    "music/musedata": {
        "train": {"tanh": 5.64, "gru": 5.06, "lstm": 5.18},
        "test": {"tanh": 6.23, "gru": 5.99, "lstm": 6.23},
    },
    "music/piano_midi": {
        "train": {"tanh": 5.64, "gru": 4.93, "lstm": 6.49},
        "test": {"tanh": 9.03, "gru": 8.82, "lstm": 9.03},
    },
    "speech/a": {
        "train": {"tanh": 6.29, "gru": 2.31, "lstm": 1.44},
        "test": {"tanh": 6.44, "gru": 3.59, "lstm": 2.70},
    },
    "speech/b": {
        "train": {"tanh": 7.61, "gru": 0.38, "lstm": 0.80},
        "test": {"tanh": 7.62, "gru": 0.88, "lstm": 1.26},
    },
}

# Our data differ from the paper's here: the difference column is left empty for these.
NOT_COMPARABLE = {
    "speech/a": "FSDD replaces Ubisoft A (never released)",
    "speech/b": "FSDD replaces Ubisoft B (never released)",
}


def paper_nll(experiment: str, split: str, unit: str) -> float | None:
    return PAPER_TABLE2.get(experiment, {}).get(split, {}).get(unit)
