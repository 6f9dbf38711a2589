"""Draw samples from a loaded run and write them as files: .mid + .png (music), .wav (speech).

Shared by ``python -m gru_repro.sample`` and ``scripts/make_samples.py``. Every file is
written atomically; a ``samples.json`` beside them records what was drawn and how.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gru_repro.atomic import atomic_write_text
from gru_repro.data.splits import DataFacts, DataKind
from gru_repro.sampling.generate import sample_music, sample_speech
from gru_repro.sampling.loading import LoadedRun
from gru_repro.sampling.midi_io import DEFAULT_TEMPO_BPM, write_midi
from gru_repro.sampling.plots import plot_rolls, plot_waveforms
from gru_repro.sampling.wav_io import write_wav

log = logging.getLogger(__name__)

DEFAULT_MUSIC_FRAMES = 128
DEFAULT_SPEECH_SECONDS = 1.0


@dataclass
class SampleOptions:
    """What to draw. Units: music counts frames, speech counts samples."""

    n: int = 4  # sequences to draw
    length: int | None = None  # new frames / samples; None: 128 frames or 1 s of speech
    seed: int = 0  # torch.Generator seed: same seed, same files
    prime: int = 0  # frames / samples copied from the start of test sequence i before sampling
    tempo: float = DEFAULT_TEMPO_BPM  # beats per minute written into the MIDI files
    frame_rate: float | None = None  # music frames per second; None: the data's, else 1 per beat
    references: int = 2  # real test sequences drawn beside the samples in the picture
    data_dir: str | None = None  # where the data set lives; None: the run's own setting
    prefix: str = "sample"  # file names: {prefix}_{i}.mid / .wav, {prefix}.png, {prefix}.json


def _data_setting(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    data = config.get("data")
    if not isinstance(data, Mapping):
        raise ValueError("the run's config has no data group: cannot load its test sequences")
    name = data.get("name")
    if not name:
        raise ValueError("the run's data config names no data set ('name' key)")
    options = {k: v for k, v in data.items() if k not in ("name", "_target_")}
    return str(name), options


def load_test_sequences(run: LoadedRun, data_dir: str | None = None) -> list[Tensor]:
    """The run's test set as real sequences: (T, P) rolls for music, (L,) raw waves for speech."""
    from gru_repro.data import load_splits

    name, options = _data_setting(run.config)
    if data_dir is not None:
        options["data_dir"] = data_dir
    options.setdefault("data_dir", "data")
    if not options.get("mirror"):  # a run trained from a download can still use a mirror
        options["mirror"] = os.environ.get("DATA_MIRROR") or None
    splits = load_splits(name, **options)
    if run.facts.kind is DataKind.SPEECH:
        norm = run.facts.normalisation
        # inputs[0] is the first window; each target continues the waveform by one hop.
        return [
            torch.cat([inputs[0], targets.reshape(-1)]) * norm.std + norm.mean
            for inputs, targets in splits.test
        ]
    # Music examples are (roll[:-1], roll[1:]): the roll is the inputs plus the last target.
    return [torch.cat([inputs, targets[-1:]]) for inputs, targets in splits.test]


def _write_json(payload: dict[str, Any], path: Path) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def write_samples(
    run: LoadedRun,
    out_dir: str | Path,
    options: SampleOptions,
    test_sequences: list[Tensor] | None = None,
) -> list[Path]:
    """Sample ``options.n`` sequences from ``run`` into ``out_dir``; returns the written files.

    ``test_sequences`` (see ``load_test_sequences``) supply the primer (sample i is primed with
    test sequence i mod count) and the real sequences of the picture; needed when prime > 0.
    """
    if options.prime > 0 and not test_sequences:
        raise ValueError("prime > 0 needs test sequences to copy the primer from")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(options.seed)
    facts = run.facts
    real = test_sequences or []
    written: list[Path] = []
    drawn: list[np.ndarray] = []  # (T, P) rolls or (L,) waveforms, as written
    speech = facts.kind is DataKind.SPEECH
    sample_rate = int(facts.info["sample_rate"]) if speech else None  # Hz
    for i in range(options.n):
        primer = real[i % len(real)][: options.prime] if options.prime > 0 else None
        if speech:
            length = options.length or int(DEFAULT_SPEECH_SECONDS * sample_rate)
            wave = sample_speech(
                run.model,
                facts.framing,
                facts.normalisation,
                n=1,
                length=length,
                generator=generator,
                primer=primer,
            )[0]
            drawn.append(wave.clamp(-1.0, 1.0).numpy())
            written.append(
                write_wav(
                    wave.numpy(), out_dir / f"{options.prefix}_{i}.wav", sample_rate=sample_rate
                )
            )
        else:
            length = options.length or DEFAULT_MUSIC_FRAMES
            rolls = sample_music(run.model, n=1, length=length, generator=generator, primer=primer)
            roll = rolls[:, 0]  # (T, P)
            drawn.append(roll.numpy())
            written.append(_write_roll(roll, out_dir / f"{options.prefix}_{i}.mid", facts, options))
    written.append(_write_picture(out_dir / f"{options.prefix}.png", drawn, facts, options, real))
    manifest = {
        "checkpoint": str(run.checkpoint),
        "dataset": facts.dataset,
        "unit": (run.config.get("model") or {}).get("unit"),
        "options": asdict(options),
        "frame_rate": None if speech else music_frame_rate(facts, options),
        "sample_rate": sample_rate,
        "files": [p.name for p in written],
    }
    _write_json(manifest, out_dir / f"{options.prefix}.json")
    log.info("wrote %d files to %s", len(written), out_dir)
    return written


def music_frame_rate(facts: DataFacts, options: SampleOptions) -> float:
    """Frames per second for the MIDI files: the option, else the data's, else one per beat.

    The four published sets carry no wall-clock rate (their rolls are sampled per beat
    fraction, ``frame_rate: None``); one frame per beat at ``tempo`` plays them at a natural
    speed (JSB Chorales: one chord per beat).
    """
    rate = options.frame_rate or facts.info.get("frame_rate") or options.tempo / 60.0
    if not rate > 0:
        raise ValueError(f"frame_rate must be positive frames per second, got {rate}")
    return float(rate)


def _write_roll(roll: Tensor, path: Path, facts: DataFacts, opts: SampleOptions) -> Path:
    frame_rate, pitch_low = music_frame_rate(facts, opts), int(facts.info["pitch_low"])
    return write_midi(
        roll.numpy(), path, frame_rate=frame_rate, pitch_low=pitch_low, tempo=opts.tempo
    )


def _write_picture(
    path: Path,
    drawn: list[np.ndarray],
    facts: DataFacts,
    options: SampleOptions,
    real: list[Tensor],
) -> Path:
    """One PNG of every sample beside up to ``options.references`` real test sequences."""
    references = [np.asarray(seq) for seq in real[: options.references]]
    if facts.kind is DataKind.SPEECH:
        return plot_waveforms(
            drawn,
            path,
            references=references,
            sample_rate=int(facts.info["sample_rate"]),
            prime_samples=options.prime,
        )
    frame_rate, pitch_low = music_frame_rate(facts, options), int(facts.info["pitch_low"])
    return plot_rolls(
        drawn,
        path,
        references=references,
        frame_rate=frame_rate,
        pitch_low=pitch_low,
        prime_frames=options.prime,
        title=f"{facts.dataset}: samples (left) vs test sequences (right)",
    )
