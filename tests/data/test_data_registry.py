"""The data set registry: names, lazy loaders, option checking."""

from __future__ import annotations

import inspect

import pytest

from gru_repro.data import LOADERS, UnknownDatasetError, load_splits
from gru_repro.data.registry import LoaderSpec
from gru_repro.data.speech import load_fsdd


def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(UnknownDatasetError) as err:
        load_splits("jsb_chorales", data_dir=tmp_path)
    message = str(err.value)
    assert "'jsb_chorales'" in message
    for name in ("jsb", "nottingham", "musedata", "piano_midi", "synthetic", "midi_folder"):
        assert name in message
    assert isinstance(err.value, ValueError)


def test_speech_sets_are_one_loader_with_each_set_s_own_cut():
    """speech_a and speech_b are `load_fsdd` under their own name and FSDD cut; every key the
    registry passes is an argument of the loader it names."""
    for name, length, stride, joined in (
        ("speech_a", 500, 1500, False),
        ("speech_b", 8000, 13000, True),
    ):
        spec = LOADERS[name]
        assert spec.load is load_fsdd and spec.fixed == {"dataset": name}
        assert spec.defaults == {
            "sequence_length": length,
            "segment_stride": stride,
            "join_speaker": joined,
        }
    for name, spec in LOADERS.items():
        implied = {*spec.fixed, *spec.defaults}
        assert implied <= set(inspect.signature(spec.load).parameters), name


def test_unknown_option_names_the_accepted_ones(tmp_path):
    with pytest.raises(ValueError, match=r"'jsb' does not take option\(s\) frame_rate; it takes:"):
        load_splits("jsb", data_dir=tmp_path, frame_rate=8)


def test_a_name_s_defaults_give_way_to_options_and_its_fixed_keys_do_not(tmp_path, monkeypatch):
    def probe(*, data_dir, mirror=None, dataset, a, b):
        return {"data_dir": data_dir, "mirror": mirror, "dataset": dataset, "a": a, "b": b}

    spec = LoaderSpec(probe, "test", fixed={"dataset": "x"}, defaults={"a": 1, "b": 2})
    monkeypatch.setitem(LOADERS, "probe", spec)
    got = load_splits("probe", data_dir=tmp_path, b=3)
    assert got == {"data_dir": tmp_path, "mirror": None, "dataset": "x", "a": 1, "b": 3}
    with pytest.raises(
        ValueError, match=r"'probe' does not take option\(s\) dataset; it takes: a, b"
    ):
        load_splits("probe", data_dir=tmp_path, dataset="y")


@pytest.mark.subprocess
def test_import_is_light():
    """`import gru_repro.data` must not import the registry, speech (or pretty_midi) until a
    loader is used."""
    import subprocess
    import sys

    code = (
        "import sys, gru_repro.data; "
        "print(*(m in sys.modules for m in ('gru_repro.data.registry', 'gru_repro.data.speech', "
        "'pretty_midi')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
