"""Data sets, fetching and batching.

splits = load_splits("jsb", data_dir="data")          # DataSplits of (inputs, targets)
batches = make_batches(splits.train, 8, shuffle=True, generator=g)   # list[Batch], (T, B, D)

`LOADERS`, `load_splits` and `load_configured_splits` (registry.py) are imported on first
use, so that importing the data types does not import every reader.
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
from gru_repro.data.splits import SPLITS, DataFacts, DataKind, DataSplits, Example

__all__ = [
    "SPLITS",
    "Batch",
    "ChecksumError",
    "DataError",
    "DataFacts",
    "DataKind",
    "DataSplits",
    "Example",
    "FetchError",
    "LOADERS",
    "UnknownDatasetError",
    "UnreadableFileError",
    "UnsafePickleError",
    "collate",
    "load_configured_splits",
    "load_splits",
    "make_batches",
]


def __getattr__(name: str):
    if name in ("LOADERS", "load_splits", "load_configured_splits"):
        from gru_repro.data import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
