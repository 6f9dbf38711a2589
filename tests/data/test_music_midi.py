"""MIDI -> piano roll through pretty_midi, and the train/valid/test MIDI folder reader."""

from __future__ import annotations

import logging

import numpy as np
import pretty_midi
import pytest
import torch

from gru_repro.data import UnreadableFileError, load_splits
from gru_repro.data.midi import midi_to_roll

SPLITS = ("train", "valid", "test")


def write_midi(path, notes, drums=()):
    """notes: (pitch, start s, end s) on a piano; drums the same on a drum track."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
    midi.instruments.append(piano)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        kit.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in drums]
        midi.instruments.append(kit)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


@pytest.fixture
def corpus(tmp_path):
    """train: 3 pieces, valid: 1, test: 2; piece k plays C4 then E4+G4, k+1 seconds each half."""
    root = tmp_path / "corpus"
    counts = {"train": 3, "valid": 1, "test": 2}
    for split in SPLITS:
        for k in range(counts[split]):
            half = 0.5 * (k + 1)
            write_midi(
                root / split / f"piece{k}.mid",
                [(60, 0, half), (64, half, 2 * half), (67, half, 2 * half)],
            )
    return root


def test_midi_to_roll_exact_frames(tmp_path):
    path = write_midi(
        tmp_path / "a.mid", [(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 0.5, 1.0)], drums=[(36, 0, 1)]
    )
    roll = midi_to_roll(path, frame_rate=4)
    assert roll.dtype == np.uint8 and roll.shape == (4, 88)
    expected = np.zeros((4, 88), np.uint8)
    expected[0:2, 60 - 21] = 1
    expected[2:4, [64 - 21, 67 - 21]] = 1
    np.testing.assert_array_equal(roll, expected)  # drums (MIDI 36 on the kit) left out
    # A PrettyMIDI object works too, and the frame rate scales the frame count.
    assert midi_to_roll(pretty_midi.PrettyMIDI(str(path)), frame_rate=16).shape == (16, 88)


def test_midi_to_roll_pitch_range(tmp_path):
    path = write_midi(tmp_path / "a.mid", [(59, 0.0, 1.0), (60, 0.0, 1.0), (71, 0.0, 1.0)])
    roll = midi_to_roll(path, frame_rate=2, pitch_low=60, pitch_high=71)
    assert roll.shape == (2, 12)
    np.testing.assert_array_equal(roll.sum(0), [2] + [0] * 10 + [2])  # 59 is out of range
    with pytest.raises(ValueError, match="pitch range"):
        midi_to_roll(path, frame_rate=2, pitch_low=20, pitch_high=130)


def test_midi_folder_loads_splits(corpus, tmp_path):
    splits = load_splits("midi_folder", data_dir=tmp_path / "data", path=corpus, frame_rate=4)
    assert [len(splits.split(s)) for s in SPLITS] == [3, 1, 2]
    assert splits.input_size == 88 and splits.facts.info["frame_rate"] == 4.0
    # Piece k lasts 2(k+1)/2 s = k+1 s at 4 frames/s: 4(k+1) frames, 4(k+1) - 1 predicted steps.
    assert [x.shape[0] for x, _ in splits.train] == [3, 7, 11]
    inputs, targets = splits.train[1]
    assert inputs[:4, 60 - 21].tolist() == [1, 1, 1, 1] and inputs[4:, 60 - 21].sum() == 0
    assert torch.equal(targets[3:, [64 - 21, 67 - 21]], torch.ones(4, 2))
    assert splits.facts.info["n_frames"] == {"train": 24, "valid": 4, "test": 12}


def test_midi_folder_uses_cache_until_files_change(corpus, tmp_path, monkeypatch):
    from gru_repro.data import midi as midi_module

    data = tmp_path / "data"
    first = load_splits("midi_folder", data_dir=data, path=corpus, frame_rate=4)
    monkeypatch.setattr(midi_module, "midi_to_roll", lambda *a, **k: pytest.fail("cache miss"))
    again = load_splits("midi_folder", data_dir=data, path=corpus, frame_rate=4)
    assert again.facts.info["cache"] == first.facts.info["cache"]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first.test, again.test, strict=True))
    monkeypatch.undo()
    write_midi(corpus / "train" / "piece9.mid", [(72, 0, 1)])  # a changed corpus: new cache
    changed = load_splits("midi_folder", data_dir=data, path=corpus, frame_rate=4)
    assert len(changed.train) == 4 and changed.facts.info["cache"] != first.facts.info["cache"]


def test_unreadable_midi_names_the_file(corpus, tmp_path):
    bad = corpus / "valid" / "broken.mid"
    bad.write_bytes(b"MThd this is not really a MIDI file")
    with pytest.raises(UnreadableFileError, match="broken.mid") as err:
        load_splits("midi_folder", data_dir=tmp_path / "data", path=corpus, frame_rate=4)
    assert "allow_skipping" in str(err.value)


def test_unreadable_midi_skipped_with_warning(corpus, tmp_path, caplog):
    (corpus / "train" / "broken.midi").write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.WARNING, logger="gru_repro.data"):
        splits = load_splits(
            "midi_folder",
            data_dir=tmp_path / "data",
            path=corpus,
            frame_rate=4,
            allow_skipping=True,
        )
    assert len(splits.train) == 3
    assert any("broken.midi" in r.getMessage() for r in caplog.records)
    assert splits.facts.info["skipped"] == [str(corpus / "train" / "broken.midi")]
    # From the cache the skip is reported again, and without skipping it is still an error.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gru_repro.data"):
        load_splits(
            "midi_folder",
            data_dir=tmp_path / "data",
            path=corpus,
            frame_rate=4,
            allow_skipping=True,
        )
    assert any("broken.midi" in r.getMessage() for r in caplog.records)
    with pytest.raises(UnreadableFileError, match="broken.midi"):
        load_splits("midi_folder", data_dir=tmp_path / "data", path=corpus, frame_rate=4)


def test_midi_folder_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="needs path="):
        load_splits("midi_folder", data_dir=tmp_path)
    (tmp_path / "c" / "train").mkdir(parents=True)
    with pytest.raises(UnreadableFileError, match="no valid/, test/ subfolder"):
        load_splits("midi_folder", data_dir=tmp_path, path=tmp_path / "c")
    (tmp_path / "c" / "valid").mkdir()
    (tmp_path / "c" / "test").mkdir()
    with pytest.raises(UnreadableFileError, match="holds no .mid/.midi files"):
        load_splits("midi_folder", data_dir=tmp_path, path=tmp_path / "c")
