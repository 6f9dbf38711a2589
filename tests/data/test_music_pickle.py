"""The restricted pickle reader: agrees with the .mat reader and refuses foreign globals."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from gru_repro.data import UnreadableFileError, UnsafePickleError, load_splits
from gru_repro.data import fetch as fetch_module
from gru_repro.data.fetch import RemoteFile, sha256_of
from gru_repro.data.music import read_mat_rolls
from gru_repro.data.pickle_reader import notes_to_roll, read_note_pickle

SPLITS = ("train", "valid", "test")


def mat_to_note_lists(rolls: dict[str, list[np.ndarray]]) -> dict[str, list]:
    """The original pickle format from .mat rolls: MIDI note numbers as numpy int scalars."""
    return {
        split: [
            [[np.int64(n + 21) for n in np.flatnonzero(frame)] for frame in roll]
            for roll in rolls[split]
        ]
        for split in SPLITS
    }


@pytest.fixture(scope="module")
def jsb_rolls(data_mirror):
    return read_mat_rolls(data_mirror / "poly" / "JSB_Chorales.mat")


@pytest.fixture
def jsb_pickle(tmp_path, jsb_rolls):
    """A protocol-2 pickle (as Python 2 wrote) of the JSB .mat content."""
    path = tmp_path / "mirror" / "poly" / "JSB Chorales.pickle"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(mat_to_note_lists(jsb_rolls), protocol=2))
    return path


@pytest.mark.slow
def test_pickle_and_mat_readers_agree(jsb_pickle, jsb_rolls):
    notes = read_note_pickle(jsb_pickle)
    assert [len(notes[s]) for s in SPLITS] == [229, 76, 77]
    assert isinstance(notes["train"][0][0][0], int)
    for split in SPLITS:
        for frames, roll in zip(notes[split], jsb_rolls[split], strict=True):
            np.testing.assert_array_equal(notes_to_roll(frames, 21, 108), roll)


def test_old_numpy_module_path_is_accepted(tmp_path):
    """Pickles written by numpy 1.x name numpy.core.multiarray.scalar instead of numpy._core."""
    data = {s: [[[np.int64(60), np.int32(64)], [], [np.int16(67)]]] for s in SPLITS}
    raw = pickle.dumps(data, protocol=2).replace(
        b"numpy._core.multiarray", b"numpy.core.multiarray"
    )
    assert b"numpy.core.multiarray\nscalar" in raw
    path = tmp_path / "old.pickle"
    path.write_bytes(raw)
    assert read_note_pickle(path)["valid"] == [[[60, 64], [], [67]]]


@pytest.mark.slow
def test_load_splits_pickle_source_matches_mat(jsb_pickle, tmp_path, data_mirror, monkeypatch):
    """The same chorales through load_splits(source='pickle') and the .mat give equal examples."""
    entry = fetch_module.MANIFEST["jsb_pickle"]
    test_entry = RemoteFile(entry.relpath, entry.url, sha256_of(jsb_pickle))
    monkeypatch.setitem(fetch_module.MANIFEST, "jsb_pickle", test_entry)
    from_pickle = load_splits(
        "jsb", data_dir=tmp_path / "data", mirror=jsb_pickle.parents[1], source="pickle"
    )
    from_mat = load_splits("jsb", data_dir=tmp_path / "data", mirror=data_mirror)
    assert from_pickle.facts.info["source"] == "pickle"
    assert from_pickle.facts.info["n_frames"] == from_mat.facts.info["n_frames"]
    for split in SPLITS:
        for (x_p, y_p), (x_m, y_m) in zip(
            from_pickle.split(split), from_mat.split(split), strict=True
        ):
            assert torch.equal(x_p, x_m) and torch.equal(y_p, y_m)


@pytest.mark.parametrize(
    ("payload", "asked"),
    [
        (b"cos\nsystem\n(S'touch {marker}'\ntR.", "os.system"),
        (b"cposix\nsystem\n(S'touch {marker}'\ntR.", "posix.system"),
        (b'cbuiltins\neval\n(S\'open("{marker}", "w")\'\ntR.', "builtins.eval"),
        (b'c__builtin__\neval\n(S\'open("{marker}", "w")\'\ntR.', "__builtin__.eval"),
    ],
)
def test_malicious_pickle_is_refused_by_name(tmp_path, payload, asked):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pickle"
    path.write_bytes(payload.replace(b"{marker}", str(marker).encode()))
    with pytest.raises(UnsafePickleError, match=asked.replace(".", r"\.")) as err:
        read_note_pickle(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_reduce_based_pickle_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (eval, ("1 + 1",))

    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"train": [Exploit()]}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"(__builtin__|builtins)\.eval"):
        read_note_pickle(path)


def test_truncated_or_foreign_pickles_are_unreadable(tmp_path, jsb_pickle):
    truncated = tmp_path / "cut.pickle"
    truncated.write_bytes(jsb_pickle.read_bytes()[:5000])
    with pytest.raises(UnreadableFileError, match="cut.pickle"):
        read_note_pickle(truncated)
    wrong_shape = tmp_path / "list.pickle"
    wrong_shape.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(UnreadableFileError, match="train/valid/test"):
        read_note_pickle(wrong_shape)


def test_pickle_source_only_where_an_original_exists(tmp_path):
    with pytest.raises(ValueError, match="no original pickle is available for 'nottingham'"):
        load_splits("nottingham", data_dir=tmp_path, source="pickle")
