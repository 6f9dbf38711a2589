"""DataFacts: the typed data contract, stored in checkpoints as plain data and read back."""

from __future__ import annotations

import json

import pytest
import torch

from gru_repro.data import SPLITS, DataFacts, DataKind, load_splits
from gru_repro.data.speech_framing import Framing, Normalisation

SPEECH = DataFacts(
    DataKind.SPEECH,
    Framing(input_window=20, target_window=10, hop=10),
    Normalisation(mean=0.01, std=0.2),
    {"dataset": "speech_a", "sample_rate": 8000},
)
# The flat info dicts checkpoints held before DataFacts (speech: no kind, framing inline).
FLAT_SPEECH = {
    "dataset": "speech_a",
    "sample_rate": 8000,
    "input_window": 20,
    "target_window": 10,
    "hop": 10,
    "normalisation": {"mean": 0.01, "std": 0.2, "note": "statistics from the training split"},
}
FLAT_MUSIC = {"dataset": "jsb", "kind": "music", "pitch_low": 21, "frame_rate": None}


def test_plain_form_is_kind_framing_normalisation_info_and_reads_back(tmp_path):
    plain = SPEECH.as_plain()
    assert plain == {
        "kind": "speech",
        "framing": {"input_window": 20, "target_window": 10, "hop": 10},
        "normalisation": {"mean": 0.01, "std": 0.2},
        "info": {"dataset": "speech_a", "sample_rate": 8000},
    }
    assert json.loads(json.dumps(plain)) == plain  # plain data: JSON keeps it as is
    torch.save({"data_info": plain}, tmp_path / "c.pt")
    back = torch.load(tmp_path / "c.pt", weights_only=True)["data_info"]
    assert DataFacts.from_plain(back) == SPEECH
    assert DataFacts.from_plain(back).kind is DataKind.SPEECH


def test_the_flat_form_of_older_checkpoints_still_reads():
    assert DataFacts.from_plain(FLAT_SPEECH) == SPEECH
    music = DataFacts.from_plain(FLAT_MUSIC)
    assert music.kind is DataKind.MUSIC and music.framing is None and music.normalisation is None
    assert music.info == {"dataset": "jsb", "pitch_low": 21, "frame_rate": None}


def test_facts_missing_what_sampling_needs_are_refused():
    with pytest.raises(ValueError, match="speech data facts lack normalisation, info.sample_rate"):
        DataFacts(DataKind.SPEECH, Framing(), None, {})
    with pytest.raises(ValueError, match="music data facts lack info.pitch_low"):
        DataFacts("music", info={"dataset": "jsb"})
    with pytest.raises(ValueError, match="'video' is not a valid DataKind"):
        DataFacts("video", info={"pitch_low": 21})


def test_loaders_give_typed_facts_with_the_counts_per_split(tmp_path):
    splits = load_splits("synthetic", data_dir=tmp_path, n_train=5, n_valid=3, n_test=2)
    facts = splits.facts
    assert facts.kind is DataKind.MUSIC and facts.dataset == "synthetic"
    assert facts.info["pitch_low"] == 60 and "kind" not in facts.info
    assert tuple(facts.info["n_sequences"]) == SPLITS
    assert facts.info["n_sequences"] == {"train": 5, "valid": 3, "test": 2}
    assert DataFacts.from_plain(facts.as_plain()) == facts
