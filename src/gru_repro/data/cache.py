"""Preprocessed piano rolls cached as .npz (uint8 frames + lengths), written atomically.

One file per (source, pitch range, options): `<data_dir>/cache/<key>.npz`, holding for each
split `<split>_frames` (sum of T, P) uint8 and `<split>_lengths` (N,) int64. The key carries
the source's SHA-256 prefix, so a changed source never hits a stale cache.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gru_repro.atomic import atomic_path
from gru_repro.data.splits import SPLITS

log = logging.getLogger(__name__)


def cache_path(data_dir: str | Path, key: str) -> Path:
    return Path(data_dir) / "cache" / f"{key}.npz"


def save_rolls(path: Path, rolls: dict[str, list[np.ndarray]], meta: dict[str, Any]) -> None:
    """Write the rolls of each split (and JSON-able `meta`) to `path` atomically."""
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for split in SPLITS:
        seqs = rolls[split]
        width = seqs[0].shape[1] if seqs else 0
        arrays[f"{split}_frames"] = (
            np.concatenate(seqs).astype(np.uint8) if seqs else np.zeros((0, width), np.uint8)
        )
        arrays[f"{split}_lengths"] = np.array([len(s) for s in seqs], dtype=np.int64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: savez adds no .npz
        np.savez_compressed(f, **arrays)
    log.info("cached %s", path)


def load_rolls(path: Path) -> tuple[dict[str, list[np.ndarray]], dict[str, Any]] | None:
    """The cached rolls and meta, or None when the file is missing or unreadable (rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            rolls = {}
            for split in SPLITS:
                frames = npz[f"{split}_frames"]
                ends = np.cumsum(npz[f"{split}_lengths"])[:-1]
                rolls[split] = np.split(frames, ends) if len(ends) or len(frames) else []
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        log.warning("ignoring unreadable cache %s (%s); rebuilding it", path, err)
        return None
    log.debug("cache hit %s", path)
    return rolls, meta
