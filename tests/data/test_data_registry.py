"""The data set registry: names, lazy loaders, option checking."""

from __future__ import annotations

import pytest

from gru_repro.data import LOADERS, DataError, UnknownDatasetError, load_splits
from gru_repro.data.registry import resolve


def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(UnknownDatasetError) as err:
        load_splits("jsb_chorales", data_dir=tmp_path)
    message = str(err.value)
    assert "'jsb_chorales'" in message
    for name in ("jsb", "nottingham", "musedata", "piano_midi", "synthetic", "midi_folder"):
        assert name in message
    assert isinstance(err.value, ValueError)


def test_registry_names_the_speech_loaders_lazily():
    for name in ("speech_a", "speech_b", "audio_folder"):
        assert LOADERS[name].target.startswith("gru_repro.data.speech:")


def test_unknown_option_names_the_accepted_ones(tmp_path):
    with pytest.raises(ValueError, match=r"'jsb' does not take option\(s\) frame_rate; it takes:"):
        load_splits("jsb", data_dir=tmp_path, frame_rate=8)


def test_missing_module_or_function_is_a_clear_error():
    with pytest.raises(DataError, match="module gru_repro.data.nowhere does not exist"):
        resolve("gru_repro.data.nowhere:load")
    with pytest.raises(DataError, match="gru_repro.data.music has no function load_nothing"):
        resolve("gru_repro.data.music:load_nothing")


@pytest.mark.subprocess
def test_import_is_light():
    """`import gru_repro.data` must not import speech (or pretty_midi) until a loader is used."""
    import subprocess
    import sys

    code = (
        "import sys, gru_repro.data; "
        "print('gru_repro.data.speech' in sys.modules, 'pretty_midi' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
