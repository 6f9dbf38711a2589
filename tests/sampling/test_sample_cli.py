"""``python -m gru_repro.sample`` on checkpoints built here in the documented bundle format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile
import torch

from gru_repro.data import DataFacts, DataKind
from gru_repro.data.audio import read_audio
from gru_repro.data.midi import midi_to_roll
from gru_repro.data.speech_framing import Framing, Normalisation
from gru_repro.models import build_model
from gru_repro.sample import main

MUSIC = DataFacts(DataKind.MUSIC, info={"dataset": "jsb", "frame_rate": 4.0, "pitch_low": 21})
SPEECH = DataFacts(
    DataKind.SPEECH,
    Framing(input_window=20, target_window=10, hop=10),
    Normalisation(mean=0.0, std=0.1),
    {"dataset": "speech_a", "sample_rate": 8000},
)
# data_info as checkpoints held it before DataFacts: the loader's flat info dict.
FLAT_INFO = {
    "music": {"dataset": "jsb", "kind": "music", "frame_rate": 4.0, "pitch_low": 21},
    "speech": {
        "dataset": "speech_a",
        "sample_rate": 8000,
        "input_window": 20,
        "target_window": 10,
        "hop": 10,
        "normalisation": {"mean": 0.0, "std": 0.1, "note": "from the training split"},
    },
}


def make_run(
    folder: Path, *, speech: bool = False, data: dict | None = None, flat: bool = False
) -> Path:
    """A run folder with checkpoints/best.pt as gru_repro.train writes it (`flat`: with the
    data_info of checkpoints written before DataFacts)."""
    size_in, size_out, head = (20, 10, "gmm") if speech else (88, 88, "bernoulli")
    model_cfg = {"unit": "gru", "hidden_size": 8, "budget": None, "head": head, "init": "paper"}
    torch.manual_seed(0)
    model = build_model(input_size=size_in, output_size=size_out, **model_cfg)
    facts = SPEECH if speech else MUSIC
    bundle = {
        "model": model.state_dict(),
        "config": {"model": model_cfg, "data": data or {"name": "jsb"}, "seed": 0},
        "model_options": model_cfg,
        "input_size": size_in,
        "output_size": size_out,
        "data_info": FLAT_INFO[facts.kind.value] if flat else facts.as_plain(),
        "epoch": 3,
    }
    (folder / "checkpoints").mkdir(parents=True)
    torch.save(bundle, folder / "checkpoints" / "best.pt")
    return folder


def test_music_run_gives_midi_files_a_picture_and_a_manifest(tmp_path):
    run = make_run(tmp_path / "run")
    assert main([str(run), "n=3", "length=40", "seed=5", "references=0"]) == 0
    out = run / "samples"
    names = {p.name for p in out.iterdir()}
    assert names == {"sample_0.mid", "sample_1.mid", "sample_2.mid", "sample.json", "sample.png"}
    for i in range(3):
        midi = pretty_midi.PrettyMIDI(str(out / f"sample_{i}.mid"))
        assert midi.instruments[0].notes, "an untrained model still plays some notes"
        roll = midi_to_roll(midi, 4.0)
        assert roll.shape[0] <= 40 and roll.shape[1] == 88
        assert midi.get_end_time() <= 40 / 4.0 + 1e-9  # 40 frames at 4 frames per second
    manifest = json.loads((out / "sample.json").read_text())
    assert manifest["options"]["seed"] == 5 and manifest["unit"] == "gru"


@pytest.mark.slow
def test_music_primed_with_the_start_of_real_jsb_test_sequences(tmp_path, data_mirror):
    from gru_repro.data import load_splits

    data = {"name": "jsb", "data_dir": str(tmp_path / "data"), "mirror": str(data_mirror)}
    run = make_run(tmp_path / "run", data=data)
    assert main([str(run), "n=2", "length=16", "prime=8", "references=2", "frame_rate=4"]) == 0
    test = load_splits("jsb", data_dir=tmp_path / "data", mirror=data_mirror).test
    for i in range(2):
        roll = midi_to_roll(run / "samples" / f"sample_{i}.mid", 4.0)
        primer = test[i][0][:8].numpy()  # inputs are the roll's frames 1..T-1
        np.testing.assert_array_equal(roll[:8], primer)
    assert (run / "samples" / "sample.png").stat().st_size > 10_000  # samples beside real ones


def test_same_seed_gives_identical_files_other_seed_differs(tmp_path):
    run = make_run(tmp_path / "run")
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert (
            main(
                [
                    str(run / "checkpoints" / "best.pt"),
                    f"out={tmp_path / name}",
                    "n=2",
                    "length=30",
                    f"seed={seed}",
                    "references=0",
                ]
            )
            == 0
        )
    read = lambda name: [(tmp_path / name / f"sample_{i}.mid").read_bytes() for i in range(2)]  # noqa: E731
    assert read("a") == read("b")
    assert read("a") != read("c")


def test_speech_run_gives_16_bit_wav_files_at_the_data_rate(tmp_path):
    run = make_run(tmp_path / "run", speech=True)
    assert main([str(run), "n=2", "length=800", "seed=0", "references=0"]) == 0
    for i in range(2):
        path = run / "samples" / f"sample_{i}.wav"
        info = soundfile.info(str(path))
        assert (info.samplerate, info.subtype) == (8000, "PCM_16")
        wave = read_audio(path, 8000)
        assert wave.shape == (800,)
        assert np.abs(wave).max() <= 1.0 and wave.std() > 0
    first = (run / "samples" / "sample_0.wav").read_bytes()
    assert main([str(run), "n=1", "length=800", "seed=0", "references=0"]) == 0
    assert (run / "samples" / "sample_0.wav").read_bytes() == first


@pytest.mark.parametrize("speech", [False, True], ids=["music", "speech"])
def test_checkpoints_with_the_older_flat_data_info_give_the_same_files(tmp_path, speech):
    """Runs trained before DataFacts (flat data_info) sample exactly as the typed form does."""
    suffix = "wav" if speech else "mid"
    for name, flat in (("typed", False), ("flat", True)):
        run = make_run(tmp_path / name, speech=speech, flat=flat)
        assert main([str(run), "n=1", "length=200", "seed=3", "references=0"]) == 0
    typed, flat = (tmp_path / n / "samples" / f"sample_0.{suffix}" for n in ("typed", "flat"))
    assert typed.read_bytes() == flat.read_bytes()
    manifest = json.loads((tmp_path / "flat" / "samples" / "sample.json").read_text())
    assert manifest["dataset"] == ("speech_a" if speech else "jsb")
    assert manifest["sample_rate" if speech else "frame_rate"] == (8000 if speech else 4.0)


def test_bad_arguments_give_one_line_errors(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "no run folder or checkpoint" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "checkpoints/best.pt" in capsys.readouterr().err
    run = make_run(tmp_path / "run")
    with pytest.raises(SystemExit):
        main([str(run), "colour=blue"])
    assert "colour" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(run), "n=many"])
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    assert main([str(tmp_path / "junk.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err


@pytest.mark.subprocess
def test_module_entry_point_runs(tmp_path):
    run = make_run(tmp_path / "run")
    done = subprocess.run(
        [sys.executable, "-m", "gru_repro.sample", str(run), "n=1", "length=8", "references=0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (run / "samples" / "sample_0.mid").is_file()
