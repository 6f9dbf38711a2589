"""One direction of one layer over a padded batch or a packed batch of sequences.

A packed batch (:class:`torch.nn.utils.rnn.PackedSequence`, sequences sorted by decreasing
length) is run in chunks of consecutive steps over which the number of live sequences is
constant: each chunk is one call of the unit on a ``(steps, live, I)`` view of the packed
data, and the live sequences' final states carry into the next chunk. So every sequence's
final state is the one after its own last step, and no step runs on padding.

The backward direction reverses every sequence within its own length (the reversal is a
permutation of the packed rows, its own inverse), runs forward, and reverses the outputs
back; so it starts at each sequence's true last step, as torch.nn does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gru_repro.nn.unit_call import State

# x (T, B, I), state (B, H) each -> (out (T, B, H), final state)
RunUnit = Callable[[Tensor, State], tuple[Tensor, State]]


class PackedLayout:
    """Where each step's rows lie in packed data of ``batch_sizes`` (T,) live sequences.

    ``chunks``: (first row, last row + 1, steps, live sequences) per run of equal batch size;
    ``reverse_rows`` (N,): row of (length_b - 1 - t, b) for the row of (t, b).
    """

    def __init__(self, batch_sizes: Tensor, device: torch.device) -> None:
        sizes = batch_sizes.tolist()
        self.chunks: list[tuple[int, int, int, int]] = []
        row = step = 0
        while step < len(sizes):
            live, first_row, first_step = sizes[step], row, step
            while step < len(sizes) and sizes[step] == live:
                row, step = row + live, step + 1
            self.chunks.append((first_row, row, step - first_step, live))
        counts = batch_sizes.to(torch.int64)
        starts = torch.cumsum(counts, 0) - counts  # (T,) first row of each step
        lengths = (counts.unsqueeze(1) > torch.arange(sizes[0])).sum(0)  # (B,)
        step_of_row = torch.arange(len(sizes)).repeat_interleave(counts)  # (N,)
        seq_of_row = torch.arange(int(counts.sum())) - starts.repeat_interleave(counts)
        mirrored = lengths[seq_of_row] - 1 - step_of_row
        self.reverse_rows = (starts[mirrored] + seq_of_row).to(device)


def run_padded(run: RunUnit, x: Tensor, state: State, *, reverse: bool) -> tuple[Tensor, State]:
    """x (T, B, I) -> (out (T, B, H), final state); ``reverse`` runs from step T-1 to 0."""
    if not reverse:
        return run(x, state)
    out, final = run(x.flip(0), state)
    return out.flip(0), final


def run_packed(
    run: RunUnit, data: Tensor, layout: PackedLayout, state: State, *, reverse: bool
) -> tuple[Tensor, State]:
    """Packed data (N, I) -> (packed outputs (N, H), final states (B, H) in packed order)."""
    if reverse:
        data = data.index_select(0, layout.reverse_rows)
    outs = []
    for first_row, end_row, steps, live in layout.chunks:
        x = data[first_row:end_row].view(steps, live, -1)
        out, new = run(x, tuple(s[:live] for s in state))
        outs.append(out.reshape(steps * live, -1))
        state = tuple(torch.cat([n, s[live:]]) for n, s in zip(new, state, strict=True))
    out = torch.cat(outs)
    if reverse:
        out = out.index_select(0, layout.reverse_rows)
    return out, state
