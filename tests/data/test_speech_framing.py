"""Framing of a known waveform, segments, and normalisation statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gru_repro.data.speech import build_speech_splits
from gru_repro.data.speech_framing import Framing, Normalisation, frame_waveform, segment_bounds


def test_frame_known_waveform() -> None:
    x = np.arange(100, dtype=np.float32)  # sample i has value i
    inputs, targets = frame_waveform(x, Framing())
    # (100 - 20 - 10) // 10 + 1 = 8 steps; step t sees 10t..10t+19 and predicts 10t+20..10t+29.
    assert inputs.shape == (8, 20) and targets.shape == (8, 10)
    assert inputs.dtype == torch.float32 and inputs.is_contiguous()
    for t in range(8):
        assert inputs[t].tolist() == list(range(10 * t, 10 * t + 20))
        assert targets[t].tolist() == list(range(10 * t + 20, 10 * t + 30))
    # every sample after the first 20 is predicted exactly once (hop == target window)
    assert targets.flatten().tolist() == list(range(20, 100))


def test_step_counts_match_the_paper_lengths() -> None:
    framing = Framing()
    assert framing.n_steps(500) == 48
    assert framing.n_steps(8000) == 798
    assert framing.n_steps(29) == 0 and framing.n_steps(30) == 1
    assert framing.full_coverage_stride(500) == 480


def test_configurable_windows_and_hop() -> None:
    x = np.arange(50, dtype=np.float32)
    inputs, targets = frame_waveform(x, Framing(input_window=4, target_window=2, hop=3))
    assert inputs.shape == (15, 4)  # (50 - 6) // 3 + 1
    assert inputs[2].tolist() == [6, 7, 8, 9] and targets[2].tolist() == [10, 11]


def test_shorter_than_one_frame_raises() -> None:
    with pytest.raises(ValueError, match="29 samples is shorter than one frame"):
        frame_waveform(np.zeros(29), Framing())
    with pytest.raises(ValueError, match="input_window"):
        Framing(input_window=0)


def test_segments() -> None:
    assert segment_bounds(1200, 500, 480) == [(0, 500), (480, 980)]
    assert segment_bounds(300, 500, 480) == [(0, 300)]  # short recording stays whole
    assert segment_bounds(3500, 500, 1500) == [(0, 500), (1500, 2000), (3000, 3500)]


def test_full_coverage_segments_tile_the_targets() -> None:
    x = np.arange(5000, dtype=np.float64)
    norm_free = {"train": [("r", x)], "valid": [("v", x)], "test": [("t", x)]}
    splits = build_speech_splits(
        norm_free, sample_rate=8000, framing=Framing(), sequence_length=500, segment_stride=None
    )
    norm = splits.facts.normalisation
    targets = torch.cat([t.flatten() for _, t in splits.train]).double()
    raw = targets * norm.std + norm.mean
    n = raw.numel()
    expected = torch.arange(20, 20 + n, dtype=torch.float64)
    torch.testing.assert_close(raw, expected, rtol=0, atol=1e-3)  # float32 storage
    assert n == (5000 - 500) // 480 * 480 + 480  # 10 segments x 48 steps x 10 samples


def test_normalisation_fit_is_over_all_samples() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([10.0])
    norm = Normalisation.fit([a, b])
    assert norm.mean == pytest.approx(4.0)
    assert norm.std == pytest.approx(np.std([1, 2, 3, 10]))
    assert Normalisation.fit([np.array([0.0, 2.0])]).apply(np.array([2.0])).tolist() == [1.0]
    with pytest.raises(ValueError, match="constant"):
        Normalisation.fit([np.zeros(10)])


def test_normalisation_comes_from_train_only() -> None:
    rng = np.random.default_rng(0)
    recordings = {
        "train": [("a", rng.normal(0.5, 2.0, 4000)), ("b", rng.normal(0.5, 2.0, 4000))],
        "valid": [("c", rng.normal(-3.0, 0.1, 4000))],
        "test": [("d", rng.normal(9.0, 5.0, 4000))],
    }
    splits = build_speech_splits(
        recordings, sample_rate=8000, framing=Framing(), sequence_length=500, segment_stride=None
    )
    train = np.concatenate([w for _, w in recordings["train"]])
    norm = splits.facts.normalisation
    assert norm.mean == pytest.approx(train.mean()) and norm.std == pytest.approx(train.std())
    test_inputs = torch.cat([x.flatten() for x, _ in splits.test])
    assert test_inputs.mean().item() == pytest.approx((9.0 - train.mean()) / train.std(), abs=0.1)
