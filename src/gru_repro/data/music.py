"""Polyphonic music loaders: the TCN .mat files, the original pickles, and MIDI folders.

All three give binary piano rolls (T, P) with column j = MIDI note pitch_low + j (88 keys,
MIDI 21..108, by default), turned into next-frame examples: inputs = frames 1..T-1,
targets = frames 2..T.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import scipy.io

from gru_repro.data.cache import cache_path, load_rolls, save_rolls
from gru_repro.data.errors import UnreadableFileError
from gru_repro.data.fetch import MANIFEST, fetch_dataset
from gru_repro.data.midi import check_pitch_range, list_midi_files, read_midi_split
from gru_repro.data.pickle_reader import notes_to_roll, read_note_pickle
from gru_repro.data.splits import SPLITS, DataSplits, music_splits

log = logging.getLogger(__name__)

MAT_PITCH_LOW = 21  # column 0 of the .mat rolls is MIDI note 21 (A0); 88 columns up to 108
MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
PICKLE_NAMES = {"jsb": "jsb_pickle", "piano_midi": "piano_midi_pickle"}
SOURCES = ("mat", "pickle")


def read_mat_rolls(path: str | Path) -> dict[str, list[np.ndarray]]:
    """The 88-column uint8 rolls of each split of a TCN-format .mat file."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path))
        cells = {split: mat[key] for split, key in MAT_KEYS.items()}
    except Exception as err:  # scipy raises several types for damaged files
        raise UnreadableFileError(
            f"{path}: not a readable piano-roll .mat file ({type(err).__name__}: {err}); "
            "fetch it again (make data)"
        ) from err
    rolls = {}
    for split, cell in cells.items():
        seqs = [np.asarray(seq) for seq in cell.ravel()]
        for i, seq in enumerate(seqs):
            if seq.ndim != 2 or seq.shape[1] != 88:
                raise UnreadableFileError(
                    f"{path}: {MAT_KEYS[split]}{{{i}}} has shape {seq.shape}, expected (T, 88)"
                )
        rolls[split] = [(seq > 0).astype(np.uint8) for seq in seqs]
    return rolls


def change_pitch_range(
    roll: np.ndarray, roll_low: int, pitch_low: int, pitch_high: int
) -> tuple[np.ndarray, int]:
    """Re-index roll columns (column j = MIDI roll_low + j) to pitch_low..pitch_high.

    Returns the new roll (T, pitch_high - pitch_low + 1) and the count of active notes dropped
    because they fall outside the new range.
    """
    out = np.zeros((roll.shape[0], pitch_high - pitch_low + 1), dtype=np.uint8)
    lo, hi = max(roll_low, pitch_low), min(roll_low + roll.shape[1] - 1, pitch_high)
    kept = 0
    if lo <= hi:
        block = roll[:, lo - roll_low : hi - roll_low + 1]
        out[:, lo - pitch_low : hi - pitch_low + 1] = block
        kept = int(block.sum())
    return out, int(roll.sum()) - kept


def load_music(
    *,
    dataset: str,
    data_dir: str | Path,
    mirror: str | Path | None = None,
    source: str = "mat",
    pitch_low: int = 21,
    pitch_high: int = 108,
) -> DataSplits:
    """One of the four Boulanger-Lewandowski sets ('jsb', 'nottingham', 'musedata',
    'piano_midi') with its original splits.

    source='mat' reads the TCN .mat copy; source='pickle' the archived original pickle (only
    'jsb' and 'piano_midi' have one). The source file is fetched and its SHA-256 verified on
    every call; the rolls come from `<data_dir>/cache/` when already preprocessed.
    """
    check_pitch_range(pitch_low, pitch_high)
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not valid: use one of {', '.join(SOURCES)}")
    if source == "pickle" and dataset not in PICKLE_NAMES:
        raise ValueError(
            f"no original pickle is available for {dataset!r} (only {', '.join(PICKLE_NAMES)}); "
            "use source=mat"
        )
    entry_name = PICKLE_NAMES[dataset] if source == "pickle" else dataset
    path = fetch_dataset(entry_name, data_dir=data_dir, mirror=mirror)
    sha = MANIFEST[entry_name].sha256
    key = f"{dataset}-{source}-{sha[:12]}-p{pitch_low}-{pitch_high}"
    info = {
        "source": source,
        "file": str(path),
        "sha256": sha,
        "pitch_low": pitch_low,
        "pitch_high": pitch_high,
        "frame_rate": None,  # fixed by the published rolls, not a wall-clock rate
        "cache": str(cache_path(data_dir, key)),
    }
    cached = load_rolls(cache_path(data_dir, key))
    if cached is not None:
        return music_splits(dataset, cached[0], info)

    if source == "mat":
        raw, raw_low = read_mat_rolls(path), MAT_PITCH_LOW
        rolls, dropped = {}, 0
        for split in SPLITS:
            rolls[split] = []
            for roll in raw[split]:
                new, lost = change_pitch_range(roll, raw_low, pitch_low, pitch_high)
                rolls[split].append(new)
                dropped += lost
    else:
        notes = read_note_pickle(path)
        rolls = {s: [notes_to_roll(seq, pitch_low, pitch_high) for seq in notes[s]] for s in SPLITS}
        total = sum(len(frame) for s in SPLITS for seq in notes[s] for frame in seq)
        dropped = total - sum(int(r.sum()) for s in SPLITS for r in rolls[s])
    if dropped:
        log.warning(
            "%s: %d active notes fall outside MIDI %d..%d and were dropped",
            dataset,
            dropped,
            pitch_low,
            pitch_high,
        )
    short = {s: sum(len(r) < 2 for r in rolls[s]) for s in SPLITS}
    if any(short.values()):
        log.warning("%s: dropping sequences shorter than 2 frames: %s", dataset, short)
        rolls = {s: [r for r in rolls[s] if len(r) >= 2] for s in SPLITS}
    save_rolls(cache_path(data_dir, key), rolls, {"dropped_notes": dropped})
    return music_splits(dataset, rolls, info)


def _folder_fingerprint(root: Path) -> str:
    """Hash of the MIDI files' relative paths, sizes and modification times."""
    digest = hashlib.sha256()
    for path in list_midi_files(root):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_midi_folder(
    *,
    data_dir: str | Path,
    mirror: str | Path | None = None,
    path: str | Path | None = None,
    frame_rate: float = 8.0,
    pitch_low: int = 21,
    pitch_high: int = 108,
    allow_skipping: bool = False,
) -> DataSplits:
    """Your own corpus: `path` holds train/, valid/ and test/ folders of .mid/.midi files.

    frame_rate is in frames per second. An unreadable file is an error naming it, or, with
    allow_skipping=True, a logged warning and the file is left out. `mirror` is not used.
    """
    check_pitch_range(pitch_low, pitch_high)
    if path is None or not str(path).strip():
        raise ValueError("midi_folder needs path=<folder with train/, valid/, test/ subfolders>")
    root = Path(path).expanduser()
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise UnreadableFileError(
            f"{root} has no {'/, '.join(missing)}/ subfolder(s); put the MIDI files of each "
            "split into train/, valid/ and test/"
        )
    fingerprint = _folder_fingerprint(root)
    key = f"midi_folder-{fingerprint[:12]}-fr{frame_rate:g}-p{pitch_low}-{pitch_high}"
    info = {
        "source": "midi",
        "file": str(root),
        "pitch_low": pitch_low,
        "pitch_high": pitch_high,
        "frame_rate": float(frame_rate),
        "cache": str(cache_path(data_dir, key)),
    }
    cached = load_rolls(cache_path(data_dir, key))
    if cached is not None and (allow_skipping or not cached[1]["skipped"]):
        for skipped in cached[1]["skipped"]:
            log.warning("skipping %s (unreadable or shorter than 2 frames, cached)", skipped)
        return music_splits("midi_folder", cached[0], {**info, "skipped": cached[1]["skipped"]})

    rolls, skipped = {}, []
    for split in SPLITS:
        rolls[split], bad = read_midi_split(
            root / split,
            frame_rate=frame_rate,
            pitch_low=pitch_low,
            pitch_high=pitch_high,
            allow_skipping=allow_skipping,
        )
        skipped += bad
    save_rolls(cache_path(data_dir, key), rolls, {"skipped": skipped})
    return music_splits("midi_folder", rolls, {**info, "skipped": skipped})
