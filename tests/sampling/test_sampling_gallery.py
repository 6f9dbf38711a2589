"""`make samples`: the best run per data set and unit, small files, an index, no-runs error."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from gru_repro.data import DataFacts, DataKind
from gru_repro.data.speech_framing import Framing, Normalisation
from gru_repro.models import build_model
from gru_repro.sampling.gallery import best_runs, find_runs

REPO = Path(__file__).resolve().parents[2]
SPEECH = DataFacts(
    DataKind.SPEECH,
    Framing(input_window=20, target_window=10, hop=10),
    Normalisation(mean=0.0, std=0.1),
    {"dataset": "speech_a", "sample_rate": 8000},
)


def load_script():
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts/make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(folder: Path, dataset: str, unit: str, valid: float, status: str = "completed"):
    speech = dataset.startswith("speech")
    size_in, size_out, head = (20, 10, "gmm") if speech else (88, 88, "bernoulli")
    options = {"unit": unit, "hidden_size": 6, "budget": None, "head": head, "init": "paper"}
    model = build_model(input_size=size_in, output_size=size_out, **options)
    music = {"dataset": dataset, "frame_rate": None, "pitch_low": 21, "pitch_high": 108}
    facts = SPEECH if speech else DataFacts(DataKind.MUSIC, info=music)
    (folder / "checkpoints").mkdir(parents=True)
    torch.save(
        {
            "model": model.state_dict(),
            "config": {"model": options, "data": {"name": dataset}},
            "model_options": options,
            "input_size": size_in,
            "output_size": size_out,
            "data_info": facts.as_plain(),
        },
        folder / "checkpoints" / "best.pt",
    )
    metrics = {
        "dataset": dataset,
        "unit": unit,
        "valid_nll": valid,
        "test_nll": valid + 0.1,
        "status": status,
        "seed": 1,
        "lr": 1e-3,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.mark.slow
def test_best_run_per_dataset_and_unit_is_sampled_and_indexed(tmp_path, monkeypatch):
    runs = tmp_path / "outputs"
    fake_run(runs / "a", "jsb", "gru", 8.9)
    fake_run(runs / "b", "jsb", "gru", 8.5)  # the better GRU
    fake_run(runs / "c", "jsb", "gru", 1.0, status="diverged")  # never picked
    fake_run(runs / "d", "jsb", "tanh", 9.1)
    fake_run(runs / "e", "speech_a", "lstm", 2.0)
    (runs / "f").mkdir()
    (runs / "f" / "metrics.json").write_text("{not json")  # skipped with a warning
    chosen = best_runs(find_runs([runs, tmp_path / "missing"]))
    assert [(r.dataset, r.unit, r.folder.name) for r in chosen] == [
        ("jsb", "gru", "b"),
        ("jsb", "tanh", "d"),
        ("speech_a", "lstm", "e"),
    ]

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results" / "samples"
    assert (
        load_script().main(
            ["--runs", str(runs), "--out", str(out), "--n", "1", "--references", "0"]
        )
        == 0
    )
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        "README.md",
        "jsb/gru.json",
        "jsb/gru.png",
        "jsb/gru_0.mid",
        "jsb/tanh.json",
        "jsb/tanh.png",
        "jsb/tanh_0.mid",
        "speech_a/lstm.json",
        "speech_a/lstm.png",
        "speech_a/lstm_0.wav",
    ]
    assert all(p.stat().st_size < 200_000 for p in out.rglob("*"))  # small files only
    index = (out / "README.md").read_text()
    for link in ("jsb/gru_0.mid", "speech_a/lstm_0.wav", "jsb/tanh.png"):
        assert f"]({link})" in index
    assert "| jsb | gru | 8.500 |" in index and "`outputs/b`" in index
    assert json.loads((out / "jsb" / "gru.json").read_text())["frame_rate"] == 2.0


def test_no_runs_gives_a_clear_message_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "samples"
    assert load_script().main(["--runs", str(tmp_path / "outputs"), "--out", str(out)]) == 1
    assert "no finished runs" in capsys.readouterr().err
    assert not out.exists()
