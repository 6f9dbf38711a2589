"""Padded, length-bucketed minibatches of variable-length sequences.

Layout of one batch (time-major, as `torch.nn.RNN`)::

    inputs   (T, B, D_in)   zero after each sequence's end
    targets  (T, B, D_out)  zero after each sequence's end
    mask     (T, B) bool    True where a target is real
    lengths  (B,)   int64   predicted steps per sequence; T = lengths.max()

Sequences are never cut: evaluation runs each one whole from a zero state, and so does training
(the paper trains on whole sequences). Bucketing sorts by length so that a batch holds
sequences of similar length and padding wastes little compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from gru_repro.data.splits import Example

# Sorted sequences are shuffled within windows of this many batches, so that batch membership
# changes from epoch to epoch while lengths within a batch stay close.
BUCKET_WINDOW_BATCHES = 2


@dataclass
class Batch:
    inputs: torch.Tensor  # (T, B, D_in)  zero-padded
    targets: torch.Tensor  # (T, B, D_out) zero-padded
    mask: torch.Tensor  # (T, B) bool, True where a target is real
    lengths: torch.Tensor  # (B,) int64, predicted steps per sequence

    @property
    def batch_size(self) -> int:
        return int(self.lengths.numel())

    @property
    def n_steps(self) -> int:
        """Real (unpadded) predicted steps in the batch."""
        return int(self.lengths.sum())

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.inputs.to(device),
            self.targets.to(device),
            self.mask.to(device),
            self.lengths.to(device),
        )


def collate(examples: Sequence[Example]) -> Batch:
    """Pad a list of examples into one time-major `Batch` (order kept)."""
    if not examples:
        raise ValueError("cannot make a batch from no examples")
    for i, (inputs, targets) in enumerate(examples):
        if inputs.shape[0] != targets.shape[0] or inputs.shape[0] == 0:
            raise ValueError(
                f"example {i} has {inputs.shape[0]} input steps and {targets.shape[0]} target "
                "steps: each example needs as many inputs as targets, at least one"
            )
    lengths = torch.tensor([x.shape[0] for x, _ in examples], dtype=torch.int64)  # (B,)
    inputs = pad_sequence([x for x, _ in examples])  # (T, B, D_in)
    targets = pad_sequence([y for _, y in examples])  # (T, B, D_out)
    mask = torch.arange(inputs.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)
    return Batch(inputs, targets, mask, lengths)


def batch_order(
    lengths: Sequence[int],
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    bucket: bool = True,
) -> list[list[int]]:
    """Indices of the examples in each batch (the grouping `make_batches` uses).

    bucket=True: sort by length (ties in random order when shuffling), shuffle membership
    within windows of `BUCKET_WINDOW_BATCHES` consecutive batches, chunk, then shuffle the
    order of the batches. bucket=False: a plain (optionally shuffled) order, chunked.
    Deterministic for a given `generator` state.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(lengths)
    if shuffle:
        order = torch.randperm(n, generator=generator).tolist()
    else:
        order = list(range(n))
    if bucket:
        order.sort(key=lambda i: lengths[i])  # stable: ties keep the (random) order
        if shuffle:
            window = batch_size * BUCKET_WINDOW_BATCHES
            mixed = []
            for start in range(0, n, window):
                chunk = order[start : start + window]
                perm = torch.randperm(len(chunk), generator=generator).tolist()
                mixed.extend(chunk[p] for p in perm)
            order = mixed
    batches = [order[s : s + batch_size] for s in range(0, n, batch_size)]
    if shuffle and bucket:
        perm = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[p] for p in perm]
    return batches


def make_batches(
    examples: Sequence[Example],
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    bucket: bool = True,
) -> list[Batch]:
    """Group `examples` into padded batches; every example appears exactly once, whole.

    For evaluation pass shuffle=False: the grouping is then fixed (by length when bucketing).
    """
    lengths = [x.shape[0] for x, _ in examples]
    groups = batch_order(lengths, batch_size, shuffle=shuffle, generator=generator, bucket=bucket)
    return [collate([examples[i] for i in group]) for group in groups]
