"""configs/data/*.yaml: every file composes through Hydra and loads with load_splits(**cfg.data)."""

from __future__ import annotations

import pretty_midi
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gru_repro import config_dir
from gru_repro.data import load_splits

CONFIGS = config_dir()
MUSIC_SETS = ("jsb", "nottingham", "musedata", "piano_midi")
OWN_FILES = (*MUSIC_SETS, "synthetic", "midi_folder")
COMMON_KEYS = {"name", "data_dir", "mirror", "pitch_low", "pitch_high"}


def compose_data(tmp_path, choice, overrides=()):
    """Compose group data/ from the real configs/ under a minimal primary config."""
    primary = tmp_path / "primary"
    primary.mkdir(exist_ok=True)
    (primary / "probe.yaml").write_text(
        "defaults:\n  - data: synthetic\n  - _self_\n"
        f"hydra:\n  searchpath:\n    - file://{CONFIGS}\n"
        f"paths:\n  data_dir: {tmp_path / 'data'}\n  data_mirror: null\n"
    )
    with initialize_config_dir(config_dir=str(primary), version_base="1.3"):
        cfg = compose("probe", overrides=[f"data={choice}", *overrides])
    return OmegaConf.to_container(cfg.data, resolve=True)


@pytest.mark.parametrize("name", OWN_FILES)
def test_configs_share_keys_and_name_their_set(tmp_path, name):
    data = compose_data(tmp_path, name, ["data.path=/x"] if name == "midi_folder" else [])
    assert COMMON_KEYS <= set(data) and data["name"] == name
    if name in MUSIC_SETS:
        assert set(data) == COMMON_KEYS | {"source"}
        assert (data["pitch_low"], data["pitch_high"], data["source"]) == (21, 108, "mat")


@pytest.mark.slow
@pytest.mark.parametrize("name", MUSIC_SETS)
def test_music_configs_load(tmp_path, data_mirror, name):
    data = compose_data(tmp_path, name, [f"data.mirror={data_mirror}"])
    splits = load_splits(**data)
    assert splits.facts.info["dataset"] == name and splits.input_size == 88


def test_synthetic_config_loads(tmp_path):
    splits = load_splits(**compose_data(tmp_path, "synthetic"))
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (64, 16, 16)
    assert splits.input_size == 24


def test_midi_folder_config_loads(tmp_path):
    for split in ("train", "valid", "test"):
        midi = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(0)
        piano.notes = [pretty_midi.Note(90, 60, 0.0, 1.0)]
        midi.instruments.append(piano)
        (tmp_path / "corpus" / split).mkdir(parents=True)
        midi.write(str(tmp_path / "corpus" / split / "a.mid"))
    data = compose_data(tmp_path, "midi_folder", [f"data.path={tmp_path / 'corpus'}"])
    splits = load_splits(**data)
    assert splits.facts.info["frame_rate"] == 8.0 and len(splits.train[0][0]) == 7
