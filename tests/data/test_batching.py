"""Padded, bucketed batches: padding and masks never change per-sequence results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gru_repro.data import Batch, collate, make_batches
from gru_repro.data.batching import batch_order


def random_examples(lengths, d_in=5, d_out=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, d_in, generator=g), (torch.rand(n, d_out, generator=g) > 0.5).float())
        for n in lengths
    ]


def test_collate_pads_with_zeros_and_masks():
    examples = random_examples([3, 1, 4])
    batch = collate(examples)
    assert batch.inputs.shape == (4, 3, 5) and batch.targets.shape == (4, 3, 3)
    assert batch.lengths.tolist() == [3, 1, 4] and batch.lengths.dtype == torch.int64
    assert batch.mask.dtype == torch.bool
    assert batch.mask.T.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    for b, (x, y) in enumerate(examples):
        n = len(x)
        assert torch.equal(batch.inputs[:n, b], x) and torch.equal(batch.targets[:n, b], y)
        assert batch.inputs[n:, b].abs().sum() == 0 and batch.targets[n:, b].abs().sum() == 0
    assert batch.n_steps == 8 and batch.batch_size == 3


def test_masked_per_sequence_results_equal_unpadded():
    """A causal RNN + Bernoulli NLL over a padded batch gives each sequence's unpadded result."""
    torch.manual_seed(0)
    rnn = torch.nn.RNN(5, 7, dtype=torch.float64)
    head = torch.nn.Linear(7, 3, dtype=torch.float64)
    examples = [(x.double(), y.double()) for x, y in random_examples([9, 2, 5, 9, 1, 6])]

    def nll(inputs, targets):  # (T, B, D) -> (T, B) nats
        logits = head(rnn(inputs)[0])
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)

    for batch in make_batches(
        examples, 4, shuffle=True, generator=torch.Generator().manual_seed(1)
    ):
        per_step = nll(batch.inputs, batch.targets) * batch.mask  # (T, B)
        sums = per_step.sum(0)  # (B,)
        for b in range(batch.batch_size):
            n = int(batch.lengths[b])
            x, y = batch.inputs[:n, b : b + 1], batch.targets[:n, b : b + 1]
            alone = next(e for e in examples if len(e[0]) == n and torch.equal(e[0], x[:, 0]))
            torch.testing.assert_close(sums[b], nll(alone[0][:, None], alone[1][:, None]).sum())
            torch.testing.assert_close(
                (batch.targets[:, b] * batch.mask[:, b, None]).sum(0), alone[1].sum(0)
            )
            assert torch.equal(y[:, 0], alone[1])


def test_every_example_once_and_whole():
    lengths = [5, 17, 3, 3, 40, 8, 12, 1, 25]
    examples = random_examples(lengths)
    for kwargs in (
        {"shuffle": False},
        {"shuffle": True, "generator": torch.Generator().manual_seed(3)},
    ):
        for bucket in (True, False):
            batches = make_batches(examples, 4, bucket=bucket, **kwargs)
            assert all(isinstance(b, Batch) and b.batch_size <= 4 for b in batches)
            got = sorted(int(n) for b in batches for n in b.lengths)
            assert got == sorted(lengths)  # nothing lost, nothing cut
            assert sum(b.n_steps for b in batches) == sum(lengths)


def test_bucketing_groups_similar_lengths():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 2000, (200,), generator=g).tolist()

    def padding_fraction(groups):
        padded = sum(max(lengths[i] for i in grp) * len(grp) for grp in groups)
        return 1 - sum(lengths) / padded

    bucketed = batch_order(lengths, 8, shuffle=True, generator=torch.Generator().manual_seed(1))
    plain = batch_order(
        lengths, 8, shuffle=True, generator=torch.Generator().manual_seed(1), bucket=False
    )
    assert padding_fraction(bucketed) < 0.1 < 0.3 < padding_fraction(plain)
    evaluation = batch_order(lengths, 8, shuffle=False)
    assert [lengths[i] for grp in evaluation for i in grp] == sorted(lengths)


def test_shuffling_is_deterministic_per_seed_and_varies_across_seeds():
    lengths = list(range(1, 101))

    def order(seed):
        return batch_order(lengths, 5, shuffle=True, generator=torch.Generator().manual_seed(seed))

    assert order(7) == order(7)
    assert order(7) != order(8)
    g = torch.Generator().manual_seed(7)
    epoch1 = batch_order(lengths, 5, shuffle=True, generator=g)
    epoch2 = batch_order(lengths, 5, shuffle=True, generator=g)
    assert epoch1 != epoch2  # one generator across epochs: new order each epoch
    # Membership changes too, not only the order of the batches.
    assert {tuple(sorted(b)) for b in epoch1} != {tuple(sorted(b)) for b in epoch2}
    assert batch_order(lengths, 5, shuffle=False) == batch_order(lengths, 5, shuffle=False)


def test_bad_batches_are_clear_errors():
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        make_batches(random_examples([3]), 0, shuffle=False)
    with pytest.raises(ValueError, match="no examples"):
        collate([])
    with pytest.raises(ValueError, match="example 0 has 3 input steps and 2 target steps"):
        collate([(torch.zeros(3, 2), torch.zeros(2, 2))])
