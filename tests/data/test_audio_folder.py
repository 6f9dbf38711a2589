"""Reading a folder of WAV/FLAC files: mixdown, resampling, splits and every kind of bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gru_repro import config_dir
from gru_repro.data.audio import AudioInputError, read_audio, split_folder
from gru_repro.data.registry import load_splits


def _tone(seconds: float, rate: int, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def _write(path: Path, data: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate)
    return path


def _snapshot(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_size) for p in folder.rglob("*"))


def test_stereo_16k_flac_is_mixed_down_and_resampled(tmp_path: Path) -> None:
    left = _tone(0.5, 16000)
    path = _write(tmp_path / "x.flac", np.stack([left, 0.5 * left], axis=1), 16000)
    wave = read_audio(path, 8000)
    assert wave.dtype == np.float32 and wave.shape == (4000,)
    # mono = mean of channels = 0.75 * left; resampling keeps a 220 Hz tone's amplitude
    assert np.abs(wave[100:-100]).max() == pytest.approx(0.75 * 0.5, rel=0.05)


def test_subfolders_give_the_splits(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("valid", 1), ("test", 2)):
        for i in range(n):
            _write(tmp_path / split / f"{i}.wav", _tone(0.3, 8000, seed=i), 8000)
    splits = load_splits("audio_folder", data_dir=tmp_path / "d", path=tmp_path)
    assert splits.facts.info["n_recordings"] == {"train": 3, "valid": 1, "test": 2}
    # 2,400 samples, one segment each: (2400 - 30) // 10 + 1 = 238 steps
    assert [x.shape for x, _ in splits.train] == [(238, 20)] * 3
    assert splits.input_size == 20 and splits.output_size == 10
    assert splits.facts.info["unit_of_length"] == "samples"
    assert not (tmp_path / "d").exists()  # nothing written


def test_deterministic_split_by_file(tmp_path: Path) -> None:
    for i in range(20):
        _write(tmp_path / f"speaker{i % 3}" / f"take{i}.wav", _tone(0.1, 8000), 8000)
    first = split_folder(tmp_path, valid_fraction=0.1, test_fraction=0.1)
    again = split_folder(tmp_path, valid_fraction=0.1, test_fraction=0.1)
    assert first == again
    assert [len(first[s]) for s in ("train", "valid", "test")] == [16, 2, 2]
    names = [set(first[s]) for s in ("train", "valid", "test")]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match=f"{tmp_path} holds no WAV/FLAC files"):
        load_splits("audio_folder", data_dir=tmp_path, path=tmp_path)
    with pytest.raises(AudioInputError, match="does not exist"):
        load_splits("audio_folder", data_dir=tmp_path, path=tmp_path / "nope")
    (tmp_path / "train").mkdir()
    for i in range(3):
        _write(tmp_path / "train" / f"{i}.wav", _tone(0.1, 8000), 8000)
    with pytest.raises(AudioInputError, match="the test split has no WAV/FLAC files"):
        load_splits("audio_folder", data_dir=tmp_path, path=tmp_path)


def _folder_with(tmp_path: Path, bad_name: str, bad: bytes | np.ndarray, rate: int = 8000):
    for i in range(20):  # 2 land in test, 2 in valid: skipping one bad file leaves some
        _write(tmp_path / f"good{i}.wav", _tone(0.2, 8000, seed=i), 8000)
    bad_path = tmp_path / bad_name
    if isinstance(bad, bytes):
        bad_path.write_bytes(bad)
    else:
        _write(bad_path, bad, rate)
    return bad_path


@pytest.mark.parametrize(
    ("bad_name", "bad", "rate", "message"),
    [
        ("broken.wav", b"this is not audio", 8000, "not a readable WAV/FLAC file"),
        ("notes.txt", b"hello", 8000, r"not a WAV/FLAC file \(suffix .txt\)"),
        ("tiny.wav", np.zeros(29, dtype=np.float32), 8000, "shorter than one frame"),
        ("odd.wav", np.zeros(4000, dtype=np.float32), 44056, "cannot resample 44056 Hz"),
    ],
)
def test_bad_file_is_named_or_skipped(tmp_path, bad_name, bad, rate, message) -> None:
    bad_path = _folder_with(tmp_path, bad_name, bad, rate)
    before = _snapshot(tmp_path)
    with pytest.raises(AudioInputError, match=message) as error:
        load_splits("audio_folder", data_dir=tmp_path / "d", path=tmp_path)
    assert str(bad_path) in str(error.value) and "allow_skipping=true" in str(error.value)
    assert _snapshot(tmp_path) == before  # nothing written, not even partially

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_splits(
            "audio_folder", data_dir=tmp_path / "d", path=tmp_path, allow_skipping=True
        )
    assert any(str(bad_path) in str(w.message) for w in caught)
    assert sum(splits.facts.info["n_recordings"].values()) == 20
    assert _snapshot(tmp_path) == before


def test_bad_target_rate_and_unknown_option(tmp_path: Path) -> None:
    _folder_with(tmp_path, "extra.wav", _tone(0.2, 8000), 8000)
    with pytest.raises(AudioInputError, match="sample_rate must be a positive integer"):
        load_splits("audio_folder", data_dir=tmp_path, path=tmp_path, sample_rate=0)
    with pytest.raises(ValueError, match="does not take option"):
        load_splits("audio_folder", data_dir=tmp_path, path=tmp_path, folder=tmp_path)


def test_data_config_composes_and_loads(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gru_repro.config.store import register

    register()  # the schemas the data configs extend (the training entry does this on import)

    _folder_with(tmp_path, "extra.wav", _tone(0.2, 8000), 8000)
    configs = config_dir()
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("train", overrides=["data=audio_folder", f"data.path={tmp_path}"])
    splits = load_splits(**OmegaConf.to_container(cfg.data, resolve=True))
    assert sum(splits.facts.info["n_recordings"].values()) == 21
    assert splits.facts.info["sequence_length"] == 8000 and splits.facts.info["sample_rate"] == 8000
