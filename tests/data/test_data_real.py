"""The four real music sets from the mirror: split sizes, frame totals, cache, pitch range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gru_repro.data import load_splits
from gru_repro.data import music as music_module

# Sequences and frames per split, from ../shared/data/README.md (Boulanger-Lewandowski 2012).
EXPECTED = {
    "jsb": ((229, 76, 77), (13_807, 4_602, 4_725), 160),
    "nottingham": ((694, 173, 170), (176_561, 45_513, 44_463), 1_793),
    "musedata": ((524, 135, 124), (245_202, 82_755, 64_339), 4_273),
    "piano_midi": ((87, 12, 25), (75_911, 8_540, 19_036), 3_857),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("data")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_split_sizes_and_frames(name, data_dir, data_mirror):
    splits = load_splits(name, data_dir=data_dir, mirror=data_mirror)
    n_seq, n_frames, longest = EXPECTED[name]
    assert (len(splits.train), len(splits.valid), len(splits.test)) == n_seq
    assert tuple(splits.facts.info["n_frames"].values()) == n_frames
    assert splits.input_size == splits.output_size == 88
    # T frames give T - 1 predicted steps: inputs frames 1..T-1, targets frames 2..T.
    for split, frames in zip(("train", "valid", "test"), n_frames, strict=True):
        examples = splits.split(split)
        assert sum(x.shape[0] + 1 for x, _ in examples) == frames
    assert max(x.shape[0] + 1 for x, _ in splits.train + splits.valid + splits.test) == longest
    inputs, targets = splits.train[0]
    assert inputs.dtype == targets.dtype == torch.float32
    assert torch.equal(inputs[1:], targets[:-1])  # targets are the inputs shifted by one frame
    assert set(torch.unique(inputs).tolist()) <= {0.0, 1.0}
    assert (data_dir / "poly").is_dir() and splits.facts.info["cache"].startswith(str(data_dir))


def test_mat_columns_are_midi_21_to_108(data_dir, data_mirror):
    """JSB chorales sit in the vocal range: no notes below MIDI 36 or above 96 (C2..C7)."""
    splits = load_splits("jsb", data_dir=data_dir, mirror=data_mirror)
    used = torch.stack([y.sum(0) for _, y in splits.train]).sum(0).nonzero().ravel() + 21
    assert used.min() >= 36 and used.max() <= 96


def test_cache_hit_skips_parsing(data_dir, data_mirror, monkeypatch):
    first = load_splits("jsb", data_dir=data_dir, mirror=data_mirror)

    def fail(path):
        raise AssertionError(f"cache miss: {path} parsed again")

    monkeypatch.setattr(music_module, "read_mat_rolls", fail)
    again = load_splits("jsb", data_dir=data_dir, mirror=data_mirror)
    assert len(again.train) == len(first.train)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first.test, again.test, strict=True))


def test_damaged_cache_is_rebuilt(data_dir, data_mirror):
    first = load_splits("piano_midi", data_dir=data_dir, mirror=data_mirror)
    cache = data_dir / "cache" / first.facts.info["cache"].rsplit("/", 1)[-1]
    cache.write_bytes(cache.read_bytes()[:100])
    again = load_splits("piano_midi", data_dir=data_dir, mirror=data_mirror)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first.valid, again.valid, strict=True))
    assert np.load(cache)["valid_lengths"].sum() == 8_540


def test_narrower_pitch_range_reindexes_columns(data_dir, data_mirror):
    full = load_splits("jsb", data_dir=data_dir, mirror=data_mirror)
    narrow = load_splits("jsb", data_dir=data_dir, mirror=data_mirror, pitch_low=36, pitch_high=96)
    assert narrow.input_size == 61 and narrow.facts.info["pitch_low"] == 36
    for (x_full, _), (x_narrow, _) in zip(full.train[:20], narrow.train[:20], strict=True):
        assert torch.equal(x_full[:, 36 - 21 : 96 - 21 + 1], x_narrow)
    wide = load_splits("jsb", data_dir=data_dir, mirror=data_mirror, pitch_low=0, pitch_high=127)
    assert torch.equal(wide.test[3][1][:, 21:109], full.test[3][1])
    assert wide.test[3][1][:, :21].sum() == 0


def test_bad_pitch_range_is_a_clear_error(data_dir, data_mirror):
    with pytest.raises(ValueError, match="pitch range 90..80"):
        load_splits("jsb", data_dir=data_dir, mirror=data_mirror, pitch_low=90, pitch_high=80)
