"""speech_a / speech_b on the real FSDD copy: counts, whole-recording splits, normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from gru_repro import config_dir
from gru_repro.data import DataKind
from gru_repro.data.registry import load_splits
from gru_repro.data.speech import fsdd_split
from gru_repro.data.speech_framing import Framing
from gru_repro.data.speech_fsdd import load_fsdd_waveforms


@pytest.fixture(scope="session")
def fsdd_dir(data_mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir with the verified FSDD copy (shared by the speech tests of one session)."""
    data_dir = tmp_path_factory.mktemp("fsdd_data")
    load_fsdd_waveforms(data_dir, data_mirror)
    return data_dir


@pytest.fixture(scope="session")
def fsdd_waves(fsdd_dir: Path, data_mirror: Path) -> dict[str, np.ndarray]:
    return load_fsdd_waveforms(fsdd_dir, data_mirror)


def _reference_sequences(stream: np.ndarray, length: int, stride: int) -> list[np.ndarray]:
    """Independent framing: (steps, 30) rows of input 20 + target 10 for each segment."""
    rows = []
    for start in range(0, stream.size - length + 1, stride):
        segment = stream[start : start + length]
        windows = sliding_window_view(segment, 30)[::10]  # (48, 30) for 500 samples
        rows.append(windows)
    return rows


def _assert_split_is(split, reference: list[np.ndarray]) -> None:
    assert len(split) == len(reference)
    for (inputs, targets), rows in zip(split, reference, strict=True):
        got = torch.cat([inputs, targets], dim=1).numpy()
        np.testing.assert_allclose(got, rows, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_fsdd_recordings_and_split_rule(fsdd_waves: dict[str, np.ndarray]) -> None:
    assert len(fsdd_waves) == 3000
    assert sum(w.size for w in fsdd_waves.values()) == 10_498_424  # data/README.md
    splits = [fsdd_split(name, (0, 5), (5, 10)) for name in fsdd_waves]
    assert [splits.count(s) for s in ("train", "valid", "test")] == [2400, 300, 300]
    assert fsdd_split("7_jackson_3.wav", (0, 5), (5, 10)) == "test"
    assert fsdd_split("7_jackson_7.wav", (0, 5), (5, 10)) == "valid"
    assert fsdd_split("7_jackson_49.wav", (0, 5), (5, 10)) == "train"


def test_speech_a_counts(fsdd_dir: Path, data_mirror: Path) -> None:
    splits = load_splits("speech_a", data_dir=fsdd_dir, mirror=data_mirror)
    assert splits.facts.info["n_sequences"] == {"train": 6001, "valid": 757, "test": 738}
    assert splits.facts.info["n_recordings"] == {"train": 2400, "valid": 300, "test": 300}
    assert splits.input_size == 20 and splits.output_size == 10
    assert {tuple(x.shape) for x, _ in splits.train} == {(48, 20)}
    assert {tuple(y.shape) for _, y in splits.test} == {(48, 10)}
    facts = splits.facts
    assert facts.kind is DataKind.SPEECH and facts.framing == Framing(20, 10, 10)
    assert facts.info["unit_of_length"] == "samples" and facts.info["sample_rate"] == 8000


@pytest.mark.slow
def test_speech_a_splits_are_built_from_their_own_recordings(
    fsdd_dir: Path, data_mirror: Path, fsdd_waves: dict[str, np.ndarray]
) -> None:
    """Each split equals, value for value, the segments of its own recordings only: no
    sequence of a test or valid recording can be in train."""
    splits = load_splits("speech_a", data_dir=fsdd_dir, mirror=data_mirror)
    norm = splits.facts.normalisation

    def key(name: str) -> tuple[str, int, int]:
        digit, speaker, index = name[:-4].split("_")
        return speaker, int(digit), int(index)

    for split in ("train", "valid", "test"):
        names = sorted((n for n in fsdd_waves if fsdd_split(n, (0, 5), (5, 10)) == split), key=key)
        reference = []
        for name in names:
            wave = (fsdd_waves[name].astype(np.float64) - norm.mean) / norm.std
            reference += _reference_sequences(wave, 500, 1500)
        _assert_split_is(splits.split(split), reference)


def test_speech_b_joins_recordings_of_one_speaker_within_a_split(
    fsdd_dir: Path, data_mirror: Path, fsdd_waves: dict[str, np.ndarray]
) -> None:
    splits = load_splits("speech_b", data_dir=fsdd_dir, mirror=data_mirror)
    assert splits.facts.info["n_sequences"] == {"train": 646, "valid": 81, "test": 79}
    assert {tuple(x.shape) for x, _ in splits.valid} == {(798, 20)}
    norm = splits.facts.normalisation
    test_names = sorted(n for n in fsdd_waves if fsdd_split(n, (0, 5), (5, 10)) == "test")
    reference = []
    for speaker in sorted({n.split("_")[1] for n in test_names}):
        own = sorted(
            (n for n in test_names if n.split("_")[1] == speaker),
            key=lambda n: (int(n.split("_")[0]), int(n[:-4].split("_")[2])),
        )
        stream = np.concatenate([fsdd_waves[n] for n in own]).astype(np.float64)
        reference += _reference_sequences((stream - norm.mean) / norm.std, 8000, 13000)
    _assert_split_is(splits.test, reference)


@pytest.mark.slow
def test_normalisation_from_training_recordings_only(
    fsdd_dir: Path, data_mirror: Path, fsdd_waves: dict[str, np.ndarray]
) -> None:
    splits = load_splits("speech_a", data_dir=fsdd_dir, mirror=data_mirror, max_sequences=50)
    train = np.concatenate(
        [w for n, w in fsdd_waves.items() if fsdd_split(n, (0, 5), (5, 10)) == "train"]
    ).astype(np.float64)
    everything = np.concatenate(list(fsdd_waves.values())).astype(np.float64)
    norm = splits.facts.normalisation
    assert norm.mean == pytest.approx(train.mean(), abs=1e-9)
    assert norm.std == pytest.approx(train.std(), rel=1e-9)
    assert abs(everything.std() - train.std()) > 1e-5  # so the check above can tell them apart


@pytest.mark.slow
def test_reduced_protocol_subsets_are_deterministic(fsdd_dir: Path, data_mirror: Path) -> None:
    options = {"max_sequences": 40, "max_eval_sequences": 10, "subset_seed": 3}
    a = load_splits("speech_a", data_dir=fsdd_dir, mirror=data_mirror, **options)
    b = load_splits("speech_a", data_dir=fsdd_dir, mirror=data_mirror, **options)
    assert a.facts.info["n_sequences"] == {"train": 40, "valid": 10, "test": 10}
    for (xa, ya), (xb, yb) in zip(a.train + a.test, b.train + b.test, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    with pytest.raises(ValueError, match="does not take option"):
        load_splits("speech_a", data_dir=fsdd_dir, mirror=data_mirror, max_seqs=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speech_a", "speech_b"])
def test_data_config_composes_and_loads(name: str, fsdd_dir: Path, data_mirror: Path) -> None:
    """Every key of configs/data/<name>.yaml is an option the loader takes."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gru_repro.config.store import register

    register()  # the schemas the data configs extend (the training entry does this on import)

    configs = config_dir()
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"data={name}",
                f"paths.data_dir={fsdd_dir}",
                f"paths.data_mirror={data_mirror}",
                "data.max_sequences=5",
                "data.max_eval_sequences=3",
            ],
        )
    options = OmegaConf.to_container(cfg.data, resolve=True)
    splits = load_splits(**options)
    assert splits.facts.info["n_sequences"] == {"train": 5, "valid": 3, "test": 3}
    assert splits.facts.info["dataset"] == name
