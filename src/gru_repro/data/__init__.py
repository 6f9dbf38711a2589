"""Data sets, fetching and batching.

splits = load_splits("jsb", data_dir="data")          # DataSplits of (inputs, targets)
batches = make_batches(splits.train, 8, shuffle=True, generator=g)   # list[Batch], (T, B, D)
"""

from gru_repro.data.batching import Batch, collate, make_batches
from gru_repro.data.errors import (
    ChecksumError,
    DataError,
    FetchError,
    UnknownDatasetError,
    UnreadableFileError,
    UnsafePickleError,
)
from gru_repro.data.registry import LOADERS, load_splits
from gru_repro.data.splits import DataSplits, Example

__all__ = [
    "Batch",
    "ChecksumError",
    "DataError",
    "DataSplits",
    "Example",
    "FetchError",
    "LOADERS",
    "UnknownDatasetError",
    "UnreadableFileError",
    "UnsafePickleError",
    "collate",
    "load_splits",
    "make_batches",
]
