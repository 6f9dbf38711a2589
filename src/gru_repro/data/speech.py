"""Raw-speech data sets: `speech_a`, `speech_b` (both `load_fsdd`) and `audio_folder` (your
WAV/FLAC files).

Each step sees `input_window` = 20 samples and predicts the next `target_window` = 10, moving
by `hop` = 10 (see speech_framing.py for exactly how N samples become steps). Lengths are in
samples of the waveform at `sample_rate`.

- speech_a (the paper's Ubisoft A: 7,230 sequences of 500 samples): every FSDD recording is cut
  into 500-sample segments, one every 1,500 samples -> 7,496 sequences of 48 steps.
- speech_b (Ubisoft B: 800 sequences of 8,000 samples): the recordings of each speaker within a
  split are joined in (digit, index) order, and the stream is cut into 8,000-sample segments,
  one every 13,000 samples -> 806 sequences of 798 steps (segments may span a join).
- `segment_stride: null` tiles the recordings instead (every sample predicted once): about
  20,200 sequences for speech_a and 1,310 for speech_b.

Splits keep whole recordings on one side: FSDD's own convention puts repetition indices 0-4 in
test; indices 5-9 are carved out as valid; 10-49 train (2,400 / 300 / 300 recordings).
Normalisation (mean, std of the raw waveform) comes from all training recordings; it and the
framing are the `DataSplits.facts` (`normalisation`, `framing`). `max_sequences` /
`max_eval_sequences` keep a fixed random subset (seeded by `subset_seed`) for the reduced CPU
protocol.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from gru_repro.data.audio import read_recordings, resample_factors, split_folder
from gru_repro.data.speech_framing import Framing, Normalisation, frame_waveform, segment_bounds
from gru_repro.data.speech_fsdd import FSDD_COMMIT, FSDD_SAMPLE_RATE, load_fsdd_waveforms
from gru_repro.data.splits import SPLITS, DataFacts, DataKind, DataSplits, Example

logger = logging.getLogger(__name__)

NLL_UNIT = "nats per step: sum over the target_window predicted samples, normalised waveform"
# The paper's two speech sets as cuts of FSDD (see above), in samples; the registry's defaults.
FSDD_CUTS = {
    "speech_a": {"sequence_length": 500, "segment_stride": 1500, "join_speaker": False},
    "speech_b": {"sequence_length": 8000, "segment_stride": 13000, "join_speaker": True},
}


def fsdd_split(name: str, test_indices: Sequence[int], valid_indices: Sequence[int]) -> str:
    """Split of an FSDD file name `{digit}_{speaker}_{index}.wav`: by half-open index ranges."""
    index = int(Path(name).stem.rsplit("_", 1)[1])
    if test_indices[0] <= index < test_indices[1]:
        return "test"
    if valid_indices[0] <= index < valid_indices[1]:
        return "valid"
    return "train"


def _fsdd_order(name: str) -> tuple[str, int, int]:
    digit, speaker, index = Path(name).stem.split("_")
    return speaker, int(digit), int(index)


def _subset(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    if limit is None or limit >= len(examples):
        return examples
    if limit < 1:
        raise ValueError(f"max_sequences / max_eval_sequences must be >= 1, got {limit}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(examples))[:limit])
    return [examples[i] for i in keep]


def build_speech_splits(
    recordings: dict[str, list[tuple[str, np.ndarray]]],
    *,
    sample_rate: int,
    framing: Framing,
    sequence_length: int,
    segment_stride: int | None,
    group: Callable[[str], str] | None = None,
    max_sequences: int | None = None,
    max_eval_sequences: int | None = None,
    subset_seed: int = 0,
    info: dict[str, Any] | None = None,
) -> DataSplits:
    """Normalise (train statistics), join by `group` if given, cut into segments, frame.

    `recordings` maps each split to (name, raw waveform (N,) at `sample_rate` Hz) pairs, in the
    order to join them.
    """
    if sequence_length < framing.frame_samples:
        raise ValueError(
            f"sequence_length {sequence_length} samples is shorter than one frame "
            f"({framing.frame_samples} samples)"
        )
    stride = segment_stride or framing.full_coverage_stride(sequence_length)
    norm = Normalisation.fit([wave for _, wave in recordings["train"]])
    splits: dict[str, list[Example]] = {}
    for split in SPLITS:
        streams: dict[str, list[np.ndarray]] = defaultdict(list)
        for name, wave in recordings[split]:
            streams[group(name) if group else name].append(norm.apply(wave))
        examples = []
        for parts in streams.values():
            stream = np.concatenate(parts)
            for start, end in segment_bounds(stream.size, sequence_length, stride):
                if end - start >= framing.frame_samples:
                    examples.append(frame_waveform(stream[start:end], framing))
        limit = max_sequences if split == "train" else max_eval_sequences
        splits[split] = _subset(examples, limit, subset_seed)
        if not splits[split]:
            raise ValueError(f"the {split} split has no sequence of at least one frame")
    full_info = {
        **(info or {}),
        "sample_rate": sample_rate,
        "unit_of_length": "samples",
        "sequence_length": sequence_length,
        "segment_stride": stride,
        "nll_unit": NLL_UNIT,
        "n_recordings": {s: len(recordings[s]) for s in SPLITS},
        "n_sequences": {s: len(splits[s]) for s in SPLITS},
        "n_steps": {s: sum(int(x.shape[0]) for x, _ in splits[s]) for s in SPLITS},
        "max_sequences": max_sequences,
        "max_eval_sequences": max_eval_sequences,
    }
    logger.info("%s: sequences %s", full_info.get("dataset", "speech"), full_info["n_sequences"])
    return DataSplits(
        *(splits[s] for s in SPLITS),
        input_size=framing.input_window,
        output_size=framing.target_window,
        facts=DataFacts(DataKind.SPEECH, framing, norm, full_info),
    )


def load_fsdd(
    *,
    data_dir: str | Path,
    mirror: str | Path | None = None,
    dataset: str,
    sequence_length: int,
    segment_stride: int | None,
    join_speaker: bool,
    sample_rate: int = FSDD_SAMPLE_RATE,
    input_window: int = 20,
    target_window: int = 10,
    hop: int = 10,
    test_indices: Sequence[int] = (0, 5),
    valid_indices: Sequence[int] = (5, 10),
    max_sequences: int | None = None,
    max_eval_sequences: int | None = None,
    subset_seed: int = 0,
) -> DataSplits:
    """FSDD recordings -> DataSplits of `dataset` ('speech_a' or 'speech_b', the name the facts
    carry); `FSDD_CUTS` holds each set's sequence_length, segment_stride and join_speaker."""
    waves = load_fsdd_waveforms(data_dir, mirror)
    if sample_rate != FSDD_SAMPLE_RATE:
        up, down = resample_factors(FSDD_SAMPLE_RATE, sample_rate, where="FSDD")
        waves = {n: resample_poly(w, up, down).astype(np.float32) for n, w in waves.items()}
    recordings: dict[str, list[tuple[str, np.ndarray]]] = {s: [] for s in SPLITS}
    for name in sorted(waves, key=_fsdd_order):
        recordings[fsdd_split(name, test_indices, valid_indices)].append((name, waves[name]))
    return build_speech_splits(
        recordings,
        sample_rate=sample_rate,
        framing=Framing(input_window, target_window, hop),
        sequence_length=sequence_length,
        segment_stride=segment_stride,
        group=(lambda name: _fsdd_order(name)[0]) if join_speaker else None,
        max_sequences=max_sequences,
        max_eval_sequences=max_eval_sequences,
        subset_seed=subset_seed,
        info={
            "dataset": dataset,
            "source": f"Free Spoken Digit Dataset, commit {FSDD_COMMIT} (CC BY-SA 4.0)",
            "split_rule": f"repetition index in {list(test_indices)} test, "
            f"{list(valid_indices)} valid (half-open), else train",
            "join_speaker": join_speaker,
        },
    )


def load_audio_folder(
    *,
    data_dir: str | Path | None = None,
    mirror: str | Path | None = None,
    path: str | Path,
    sample_rate: int = 8000,
    sequence_length: int = 8000,
    segment_stride: int | None = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    allow_skipping: bool = False,
    input_window: int = 20,
    target_window: int = 10,
    hop: int = 10,
    max_sequences: int | None = None,
    max_eval_sequences: int | None = None,
    subset_seed: int = 0,
) -> DataSplits:
    """Your WAV/FLAC files -> DataSplits (`data_dir` and `mirror` are unused: files are read
    in place). Each recording is cut on its own; see audio.py for the split rule."""
    del data_dir, mirror
    framing = Framing(input_window, target_window, hop)
    resample_factors(sample_rate, sample_rate)  # validates the rate itself
    files = split_folder(
        path,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        allow_skipping=allow_skipping,
    )
    recordings = {
        split: read_recordings(
            files[split],
            sample_rate,
            min_samples=framing.frame_samples,
            allow_skipping=allow_skipping,
        )
        for split in SPLITS
    }
    for split in SPLITS:
        if not recordings[split]:
            raise ValueError(f"audio folder {path}: no usable recording left in {split}")
    return build_speech_splits(
        recordings,
        sample_rate=sample_rate,
        framing=framing,
        sequence_length=sequence_length,
        segment_stride=segment_stride,
        max_sequences=max_sequences,
        max_eval_sequences=max_eval_sequences,
        subset_seed=subset_seed,
        info={
            "dataset": "audio_folder",
            "source": str(Path(path).expanduser().resolve()),
        },
    )
