"""A speech data config brings the paper's speech model, a head that does not fit the data is
refused, and every model override documented in configs/ and README composes as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gru_repro.models import build_model
from gru_repro.models.heads import BernoulliHead
from gru_repro.models.mixture_head import GaussianMixtureHead
from gru_repro.models.params import match_hidden_size
from gru_repro.reports.table1 import MUSIC_REAL_INPUT, PAPER_TABLE1
from gru_repro.train import CONFIG_DIR, CONFIG_ERROR_EXIT

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_COMPONENTS = 20  # the paper's mixture components


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=overrides)


def _model(cfg):
    """The model train.py builds, with the input and output sizes the speech framing gives."""
    options = OmegaConf.to_container(cfg.model, resolve=True)
    return build_model(
        input_size=cfg.data.input_window, output_size=cfg.data.target_window, **options
    )


@pytest.mark.parametrize("data", ["speech_a", "speech_b", "audio_folder"])
@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_speech_data_alone_gives_the_paper_speech_model(data: str, unit: str) -> None:
    cfg = _compose([f"data={data}", f"model={unit}"])
    model = _model(cfg)
    assert isinstance(model.head, GaussianMixtureHead)
    assert model.head.n_components == PAPER_COMPONENTS
    assert model.hidden_size == PAPER_TABLE1["speech"][unit][0]  # tanh 400, GRU 227, LSTM 195


def test_speech_data_default_unit_is_the_gru_at_its_paper_size() -> None:
    model = _model(_compose(["data=speech_a"]))
    recurrent = sum(p.numel() for p in model.rnn.parameters())
    assert model.hidden_size == 227 and recurrent == 168_888  # paper, Table 1


def test_music_data_keeps_the_music_model() -> None:
    cfg = _compose(["data=jsb"])
    model = build_model(input_size=MUSIC_REAL_INPUT, output_size=MUSIC_REAL_INPUT, **cfg.model)
    assert isinstance(model.head, BernoulliHead)
    assert model.hidden_size == PAPER_TABLE1["music"]["gru"][0]


def test_documented_overrides_compose_as_written() -> None:
    # configs/model/*.yaml and configs/speech_model.yaml: change a head option on speech data
    fewer = _model(_compose(["data=speech_a", "model.head_options.n_components=10"]))
    assert fewer.head.n_components == 10 and fewer.hidden_size == 227
    # configs/speech_model.yaml: another hidden size on speech data
    sized = _model(_compose(["data=speech_a", "model.budget=null", "model.hidden_size=64"]))
    assert sized.hidden_size == 64 and isinstance(sized.head, GaussianMixtureHead)
    # configs/model/*.yaml, README ("Music sizes"): the budget instead of the hidden size
    cfg = _compose(["data=jsb", "model=tanh", "model.budget=20100", "model.hidden_size=null"])
    model = build_model(input_size=MUSIC_REAL_INPUT, output_size=MUSIC_REAL_INPUT, **cfg.model)
    assert model.hidden_size == match_hidden_size("tanh", MUSIC_REAL_INPUT, 20100)
    # docs/speech.md: your own audio, any unit
    lstm = _compose(["data=audio_folder", "data.path=/audio", "model=lstm"])
    assert _model(lstm).hidden_size == PAPER_TABLE1["speech"]["lstm"][0]


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("data", "head", "needed"), [("speech_a", "bernoulli", "gmm"), ("jsb", "gmm", "bernoulli")]
)
def test_a_head_that_does_not_fit_the_data_is_refused(
    tmp_path: Path, data: str, head: str, needed: str
) -> None:
    command = [
        sys.executable, "-m", "gru_repro.train", f"data={data}", f"model.head={head}",
        f"paths.output_root={tmp_path}", f"paths.data_dir={tmp_path / 'data'}",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=dict(os.environ)
    )
    assert done.returncode == CONFIG_ERROR_EXIT, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"model.head={head}" in lines[0] and f"data={data}" in lines[0]
    assert f"model.head={needed}" in lines[0]
    assert not (tmp_path / "data").exists()  # refused before any data was fetched
    assert not list(tmp_path.rglob("metrics.json"))
