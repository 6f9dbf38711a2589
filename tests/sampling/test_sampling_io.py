"""Round trips of the sample writers: roll -> MIDI -> roll, waveform -> WAV -> waveform."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import soundfile

from gru_repro.data.audio import read_audio
from gru_repro.data.midi import midi_to_roll
from gru_repro.sampling.midi_io import roll_to_midi, write_midi
from gru_repro.sampling.plots import plot_rolls, plot_waveforms, roll_image
from gru_repro.sampling.wav_io import QUANTISATION_STEP, write_wav


def random_roll(rng: np.random.Generator, frames: int = 120, density: float = 0.1) -> np.ndarray:
    roll = (rng.random((frames, 88)) < density).astype(np.uint8)
    roll[:, 40:44] = 1  # a chord held through the whole piece: one long note per pitch
    roll[-1, 0] = 1  # sound in the last frame, so the file's end time is the roll's length
    return roll


@pytest.mark.parametrize("frame_rate", [1, 2, 4, 8, 10, 16])
def test_roll_midi_roll_round_trip_is_exact(tmp_path, frame_rate):
    rng = np.random.default_rng(frame_rate)
    for trial in range(3):
        roll = random_roll(rng)
        path = write_midi(roll, tmp_path / f"r{trial}.mid", frame_rate=frame_rate)
        back = midi_to_roll(path, frame_rate, 21, 108)
        np.testing.assert_array_equal(back, roll)


def test_runs_of_active_frames_become_notes_at_the_frame_times():
    roll = np.zeros((10, 88), dtype=np.uint8)
    roll[2:5, 39] = 1  # MIDI 60 (middle C) from frame 2 to 4
    roll[6, 39] = 1  # re-struck after a rest: a second note
    roll[0:10, 0] = 1  # A0 held throughout: one note, not ten
    midi = roll_to_midi(roll, frame_rate=4, pitch_low=21, tempo=90)
    notes = sorted((n.pitch, n.start, n.end) for n in midi.instruments[0].notes)
    assert notes == [(21, 0.0, 2.5), (60, 0.5, 1.25), (60, 1.5, 1.75)]
    assert midi.get_tempo_changes()[1][0] == pytest.approx(90)


@pytest.mark.parametrize("frame_rate", [2, 8, 25, 100, 3.7])
def test_written_midi_holds_the_stated_tempo_and_frame_exact_timing(tmp_path, frame_rate):
    roll = np.zeros((400, 88), dtype=np.uint8)
    roll[4:8, 39] = 1
    roll[333:399, 87] = 1
    path = write_midi(roll, tmp_path / "t.mid", frame_rate=frame_rate, tempo=100)
    midi = pretty_midi.PrettyMIDI(str(path))
    assert midi.get_tempo_changes()[1][0] == pytest.approx(100)
    notes = [(n.pitch, n.start * frame_rate, n.end * frame_rate) for n in midi.instruments[0].notes]
    # Frame boundaries fall on whole ticks: times are exact up to float rounding.
    assert notes == [
        (60, pytest.approx(4), pytest.approx(8)),
        (108, pytest.approx(333), pytest.approx(399)),
    ]
    assert not list(tmp_path.glob(".*tmp")), "temp file left behind"


def test_bad_rolls_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="frames, pitches"):
        roll_to_midi(np.zeros(88), frame_rate=4)
    with pytest.raises(ValueError, match="outside MIDI"):
        roll_to_midi(np.zeros((4, 88)), frame_rate=4, pitch_low=60)
    with pytest.raises(ValueError, match="frame_rate"):
        roll_to_midi(np.zeros((4, 88)), frame_rate=0)


def test_waveform_wav_waveform_within_16_bit_quantisation(tmp_path):
    rng = np.random.default_rng(0)
    wave = np.clip(rng.normal(0.0, 0.3, 8000), -1.0, 1.0)
    path = write_wav(wave, tmp_path / "w.wav", sample_rate=8000)
    back = read_audio(path, 8000)
    assert soundfile.info(str(path)).samplerate == 8000 and back.shape == wave.shape
    assert np.max(np.abs(back - wave)) <= QUANTISATION_STEP
    # Not a trivially lossless path: 16-bit really quantises.
    assert np.max(np.abs(back - wave)) > 0


def test_overshooting_samples_are_clipped_and_bad_waves_refused(tmp_path):
    back = read_audio(
        write_wav(np.array([2.0, -3.0, 0.5]), tmp_path / "c.wav", sample_rate=8000), 8000
    )
    np.testing.assert_allclose(back, [1.0 - QUANTISATION_STEP, -1.0, 0.5], atol=QUANTISATION_STEP)
    with pytest.raises(ValueError, match="NaN"):
        write_wav(np.array([0.0, np.nan]), tmp_path / "n.wav", sample_rate=8000)
    assert not (tmp_path / "n.wav").exists()
    with pytest.raises(ValueError, match="mono"):
        write_wav(np.zeros((2, 10)), tmp_path / "s.wav", sample_rate=8000)


def test_pictures_are_written_and_roll_image_puts_high_pitches_on_top(tmp_path):
    roll = np.zeros((8, 88), dtype=np.uint8)
    roll[:, 87] = 1  # the highest key
    image = roll_image(roll)
    assert image.shape == (1, 88, 8) and image[0, 0].all() and not image[0, 1:].any()
    png = plot_rolls([roll, roll], tmp_path / "r.png", references=[roll], frame_rate=4)
    wav_png = plot_waveforms([np.zeros(800)], tmp_path / "w.png", references=[np.ones(400)])
    for path in (png, wav_png):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
