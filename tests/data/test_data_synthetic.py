"""The synthetic smoke-test set: deterministic, shaped like music, and learnable."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gru_repro.data import load_splits, make_batches


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    a = load_splits("synthetic", data_dir=tmp_path, seed=3)
    b = load_splits("synthetic", data_dir=tmp_path, seed=3)
    c = load_splits("synthetic", data_dir=tmp_path, seed=4)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a.train, b.train, strict=True))
    assert not all(
        x[0].shape == y[0].shape and torch.equal(x[0], y[0])
        for x, y in zip(a.train, c.train, strict=True)
    )
    assert not list(tmp_path.iterdir())  # generated in memory, no files


def test_shapes_and_sizes(tmp_path):
    splits = load_splits("synthetic", data_dir=tmp_path, n_train=10, min_length=5, max_length=9)
    assert splits.input_size == splits.output_size == 24
    assert len(splits.train) == 10 and all(4 <= len(x) <= 8 for x, _ in splits.train)
    inputs, targets = splits.train[0]
    assert inputs.dtype == torch.float32 and torch.equal(inputs[1:], targets[:-1])
    assert splits.facts.info["n_frames"]["train"] == sum(len(x) + 1 for x, _ in splits.train)


def test_next_frame_is_learnable(tmp_path):
    """A linear next-frame model falls far below a coin flip per pitch in 60 steps (~2.7 nats)."""
    torch.manual_seed(0)
    splits = load_splits("synthetic", data_dir=tmp_path)
    model = torch.nn.Linear(24, 24)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    train = make_batches(splits.train, 64, shuffle=False)[0]
    test = make_batches(splits.test, 64, shuffle=False)[0]

    def nll(batch):  # nats per predicted frame, padding masked out
        per_pitch = F.binary_cross_entropy_with_logits(
            model(batch.inputs), batch.targets, reduction="none"
        )
        return (per_pitch.sum(-1) * batch.mask).sum() / batch.mask.sum()

    for _ in range(60):
        optimizer.zero_grad()
        nll(train).backward()
        optimizer.step()
    with torch.no_grad():
        assert nll(test) < 4.0  # a coin flip per pitch: 24 ln 2 = 16.6 nats


def test_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="min_length"):
        load_splits("synthetic", data_dir=tmp_path, min_length=1)
    with pytest.raises(ValueError, match="noise"):
        load_splits("synthetic", data_dir=tmp_path, noise=0.7)
