"""Reading folders of WAV/FLAC recordings: mono mixdown, resampling, train/valid/test split.

Decoding is `soundfile` (libsndfile); resampling is `scipy.signal.resample_poly` with the
exact rational ratio target/source, so a ratio whose reduced terms are huge (e.g. 44,056 Hz to
8,000 Hz is 1000/5507) is refused rather than run with an enormous filter.

Split of a folder (`split_folder`):
- if it has a `train/` subfolder, the subfolders `train/`, `valid/`, `test/` are the splits
  (files found recursively inside each); a missing `valid/` is carved from train as below;
- otherwise every file is ordered by the SHA-1 of its path relative to the folder and the first
  `test_fraction` become test, the next `valid_fraction` valid, the rest train. This is
  deterministic, independent of file system order, and mostly stable when files are added.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from gru_repro.data.splits import SPLITS

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")
# Largest up/down factor accepted by resample_poly (its filter has ~20 * max(up, down) taps).
MAX_RESAMPLE_FACTOR = 1000


class AudioInputError(ValueError):
    """A file or folder that cannot be used as audio; the message names it and the fix."""


def resample_factors(source_rate: int, target_rate: int, *, where: str = "") -> tuple[int, int]:
    """(up, down) with target/source = up/down in lowest terms; refuses unusable ratios."""
    if target_rate <= 0 or int(target_rate) != target_rate:
        raise AudioInputError(f"sample_rate must be a positive integer (Hz), got {target_rate}")
    ratio = Fraction(int(target_rate), int(source_rate))
    up, down = ratio.numerator, ratio.denominator
    if max(up, down) > MAX_RESAMPLE_FACTOR:
        raise AudioInputError(
            f"{where or 'audio'}: cannot resample {source_rate} Hz to {target_rate} Hz "
            f"(ratio {up}/{down} needs a filter of ~{20 * max(up, down)} taps): convert the "
            f"file first or choose a sample_rate with a simpler ratio to {source_rate}"
        )
    return up, down


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """One file -> mono float32 waveform (N,) in [-1, 1] at `sample_rate` Hz.

    Channels are averaged (mono mixdown). Raises AudioInputError naming the file when it
    cannot be decoded, holds no samples, or cannot be resampled.
    """
    path = Path(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (N, C)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioInputError(
            f"{path}: not a readable WAV/FLAC file ({error}); remove it or set allow_skipping=true"
        ) from error
    if data.size == 0:
        raise AudioInputError(
            f"{path}: holds no audio samples; remove it or set allow_skipping=true"
        )
    wave = data.mean(axis=1, dtype=np.float64)  # (N,) mono mixdown
    if rate != sample_rate:
        try:
            up, down = resample_factors(rate, sample_rate, where=str(path))
        except AudioInputError as error:
            raise AudioInputError(f"{error}; or set allow_skipping=true") from None
        wave = resample_poly(wave, up, down)
    return wave.astype(np.float32)


def list_audio_files(folder: Path, *, allow_skipping: bool) -> list[Path]:
    """Every non-hidden file under `folder`, sorted; non-WAV/FLAC files are errors (or skipped).

    Hidden files and folders (name starting with '.') are ignored.
    """
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            message = f"{path}: not a WAV/FLAC file (suffix {path.suffix or 'none'})"
            if not allow_skipping:
                raise AudioInputError(f"{message}; remove it or set allow_skipping=true")
            warnings.warn(f"{message}; skipped", stacklevel=2)
            continue
        files.append(path)
    return files


def _hash_order(files: list[Path], root: Path) -> list[Path]:
    def key(path: Path) -> str:
        return hashlib.sha1(path.relative_to(root).as_posix().encode()).hexdigest()

    return sorted(files, key=key)


def _carve(files: list[Path], root: Path, fraction: float) -> tuple[list[Path], list[Path]]:
    """Split `files` into (rest, carved) with round(fraction * n) (at least 1) carved."""
    ordered = _hash_order(files, root)
    n = max(1, round(fraction * len(ordered))) if fraction > 0 else 0
    return sorted(ordered[n:]), sorted(ordered[:n])


def split_folder(
    folder: str | Path,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    allow_skipping: bool = False,
) -> dict[str, list[Path]]:
    """Files of each split ('train', 'valid', 'test'); see the module docstring for the rule."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise AudioInputError(f"audio folder {root} does not exist or is not a folder")
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise AudioInputError(f"{name} must be in [0, 1), got {value}")
    if (root / "train").is_dir():
        splits = {
            name: list_audio_files(root / name, allow_skipping=allow_skipping)
            if (root / name).is_dir()
            else []
            for name in SPLITS
        }
        if not (root / "valid").is_dir():
            splits["train"], splits["valid"] = _carve(splits["train"], root, valid_fraction)
    else:
        files = list_audio_files(root, allow_skipping=allow_skipping)
        if not files:
            raise AudioInputError(f"audio folder {root} holds no WAV/FLAC files")
        rest, test = _carve(files, root, test_fraction)
        train, valid = _carve(rest, root, valid_fraction / max(1e-12, 1 - test_fraction))
        splits = {"train": train, "valid": valid, "test": test}
    for name in SPLITS:
        if not splits[name]:
            raise AudioInputError(
                f"audio folder {root}: the {name} split has no WAV/FLAC files; add recordings "
                f"(or a {name}/ subfolder) or change valid_fraction/test_fraction"
            )
    logger.info(
        "audio folder %s: %s", root, ", ".join(f"{n} {len(splits[n])} files" for n in SPLITS)
    )
    return splits


def read_recordings(
    files: list[Path], sample_rate: int, *, min_samples: int, allow_skipping: bool
) -> list[tuple[str, np.ndarray]]:
    """(file name, waveform) for each file; files shorter than `min_samples` are errors.

    With `allow_skipping`, unreadable or too-short files are skipped with a warning instead.
    Nothing is written, so an error leaves no partial state behind.
    """
    recordings = []
    for path in files:
        try:
            wave = read_audio(path, sample_rate)
            if wave.size < min_samples:
                raise AudioInputError(
                    f"{path}: {wave.size} samples at {sample_rate} Hz is shorter than one "
                    f"frame ({min_samples} samples = {math.ceil(min_samples / sample_rate * 1e3)}"
                    " ms); remove it or set allow_skipping=true"
                )
        except AudioInputError as error:
            if not allow_skipping:
                raise
            warnings.warn(f"{error} (skipped)", stacklevel=2)
            continue
        recordings.append((str(path), wave))
    return recordings
