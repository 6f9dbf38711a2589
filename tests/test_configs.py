"""Every config file in every group composes with configs/train.yaml and its values are
accepted by the library function that reads them, so a stale config fails here."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from gru_repro.config.store import to_objects
from gru_repro.data.registry import LOADERS, resolve
from gru_repro.models import build_model
from gru_repro.train import CONFIG_DIR
from gru_repro.training.optim import build_optimization

CONFIGS = Path(CONFIG_DIR)
GROUPS = ("data", "model", "optim", "trainer", "experiment", "debug")


def _options(group: str) -> list[str]:
    return sorted(
        p.relative_to(CONFIGS / group).with_suffix("").as_posix()
        for p in (CONFIGS / group).rglob("*.yaml")
    )


def _compose(overrides: list[str], hydra_config: bool = False):
    """As a run sees it: Hydra's own node set (the run folder's name reads it)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if not hydra_config:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def check_values(cfg) -> None:
    """The schema's checks (what train.setup runs first), then the library functions that read
    each group, short of loading data or training."""
    config = to_objects(cfg)
    settings = config.trainer
    param = torch.nn.Parameter(torch.zeros(2))
    build_optimization(
        [param], dataclasses.asdict(config.optim), total_updates=settings.max_epochs * 10
    )
    model = build_model(input_size=20, output_size=10, **dataclasses.asdict(config.model))
    assert model.rnn.hidden_size == (config.model.hidden_size or model.rnn.hidden_size)

    data = dataclasses.asdict(config.data)
    name = data.pop("name")
    assert name in LOADERS, f"data config names unknown data set {name!r}"
    spec = LOADERS[name]
    params = inspect.signature(resolve(spec.target)).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = set(data) - set(params) - set(spec.fixed)
        assert not unknown, f"data config keys {unknown} are not arguments of {spec.target}"


def test_every_group_has_options() -> None:
    for group in ("data", "model", "optim", "trainer", "experiment"):
        assert _options(group), f"configs/{group}/ is empty"


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_and_is_accepted(group: str) -> None:
    for option in _options(group):
        overrides = [f"{group}={option}"]
        if option.endswith("_folder"):  # required keys (???): a user's own files
            overrides.append(f"data.path={CONFIGS}")
        cfg = _compose(overrides)
        try:
            check_values(cfg)
        except Exception as exc:  # name the file that went stale
            raise AssertionError(f"configs/{group}/{option}.yaml: {exc}") from exc


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiment_sweeps_name_existing_keys(experiment: str) -> None:
    cfg = _compose([f"experiment={experiment}"], hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params) or {}
    for key, values in params.items():
        key = key.lstrip("+~")
        if key in GROUPS:
            for option in str(values).split(","):
                assert option.strip() in _options(key), f"{experiment}: no configs/{key}/{option}"
        else:
            assert OmegaConf.select(cfg, key, default="<missing>") != "<missing>", (
                f"experiment {experiment} sweeps {key}, which the config does not have"
            )


@pytest.mark.parametrize("launcher", _options("hydra/launcher"))
def test_launchers_compose(launcher: str) -> None:
    cfg = _compose([f"hydra/launcher={launcher}"], hydra_config=True)
    assert cfg.hydra.launcher._target_


def test_root_defaults_and_paths() -> None:
    cfg = _compose([])
    assert cfg.data.name == "synthetic" and cfg.model.unit == "gru"
    assert cfg.optim.name == "rmsprop" and cfg.trainer.clip_grad_norm == 1.0
    assert cfg.trainer.weight_noise == 0.075  # the paper's std
    hydra_cfg = OmegaConf.to_container(_compose([], hydra_config=True).hydra, resolve=False)
    # the run folder names the run's identity: a rerun resumes or skips, never duplicates
    subdir = hydra_cfg["sweep"]["subdir"]
    assert "lr=${optim.lr}" in subdir and "seed=${seed}-${run_identity_hash:}" in subdir
    assert "${hydra.sweep.subdir}" in hydra_cfg["run"]["dir"]
    assert hydra_cfg["job"]["chdir"] is False
