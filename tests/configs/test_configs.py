"""Every config file in every group composes with configs/train.yaml and its values are
accepted by the library function that reads them, so a stale config fails here; every value
in every file says its unit or source."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from gru_repro.config.store import sweep_values, to_objects
from gru_repro.data.registry import LOADERS, options_of
from gru_repro.models import build_model
from gru_repro.models.params import count_parameters
from gru_repro.train import CONFIG_DIR
from gru_repro.training.optim import build_optimization

CONFIGS = Path(CONFIG_DIR)
GROUPS = ("data", "model", "optim", "trainer", "experiment", "debug", "search")
ADDED_GROUPS = ("search",)  # not in train.yaml's defaults (experiments include it): +search=...
CONFIG_FILES = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml"))
# A line that gives a key its value (`key: value`, `- override /group: option`); PyYAML drops
# comments, so the lines are read as text.
VALUE_LINE = re.compile(r"^\s*(?:- )?[^\s#-][^#]*?:\s+[^\s#]")


def _options(group: str) -> list[str]:
    """The selectable options of a group; `_name.yaml` files are parts the options include
    (configs/model/_base.yaml), not options."""
    return sorted(
        p.relative_to(CONFIGS / group).with_suffix("").as_posix()
        for p in (CONFIGS / group).rglob("*.yaml")
        if not p.name.startswith("_")
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
    if config.model.hidden_size is not None:
        assert model.hidden_size == config.model.hidden_size
    else:  # sized by the budget: the size whose recurrent layer comes nearest to it
        miss = {
            h: abs(
                count_parameters(config.model.unit, 20, h)["recurrent_layer"] - config.model.budget
            )
            for h in (model.hidden_size - 1, model.hidden_size, model.hidden_size + 1)
        }
        assert miss[model.hidden_size] == min(miss.values()), miss

    data = dataclasses.asdict(config.data)
    name = data.pop("name")
    assert name in LOADERS, f"data config names unknown data set {name!r}"
    unknown = set(data) - options_of(LOADERS[name]) - {"data_dir", "mirror"}
    assert not unknown, f"data config keys {unknown} are not options of data set {name!r}"


def test_every_group_has_options() -> None:
    for group in ("data", "model", "optim", "trainer", "experiment"):
        assert _options(group), f"configs/{group}/ is empty"


@pytest.mark.slow
@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_and_is_accepted(group: str) -> None:
    for option in _options(group):
        overrides = [f"{'+' if group in ADDED_GROUPS else ''}{group}={option}"]
        if option.endswith("_folder"):  # required keys (???): a user's own files
            overrides.append(f"data.path={CONFIGS}")
        cfg = _compose(overrides)
        try:
            check_values(cfg)
        except Exception as exc:  # name the file that went stale
            raise AssertionError(f"configs/{group}/{option}.yaml: {exc}") from exc


@pytest.mark.slow
@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiment_sweeps_name_existing_keys(experiment: str) -> None:
    cfg = _compose([f"experiment={experiment}"], hydra_config=True)
    params = cfg.hydra.sweeper.params or {}  # None: a single-run experiment (ablation/)
    for key, values in params.items():
        key = key.lstrip("+~")
        if key in GROUPS:
            for option in sweep_values(key, values):
                assert option in _options(key), f"{experiment}: no configs/{key}/{option}"
        else:
            assert OmegaConf.select(cfg, key, default="<missing>") != "<missing>", (
                f"experiment {experiment} sweeps {key}, which the config does not have"
            )


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_every_value_carries_a_comment(name: str) -> None:
    """Every key set in every config file (defaults entries included) says its unit, source or
    meaning on its line."""
    lines = (CONFIGS / name).read_text().splitlines()
    bare = [f"line {i}: {line.strip()}" for i, line in enumerate(lines, 1)
            if VALUE_LINE.match(line) and "  # " not in line]  # fmt: skip
    assert not bare, f"configs/{name}: no unit/source comment on " + "; ".join(bare)


# paper, Table 1: each unit's hidden size and printed recurrent-layer count, music (100 nominal
# inputs, the count the paper's fit exactly) and speech (20 input samples)
PAPER_TABLE1 = {
    "music": {"tanh": (100, 20_100), "gru": (46, 20_200), "lstm": (36, 19_800)},
    "speech": {"tanh": (400, 168_400), "gru": (227, 168_900), "lstm": (195, 169_100)},
}


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
@pytest.mark.parametrize(("task", "inputs"), [("music", 100), ("speech", 20)])
def test_unit_configs_solve_the_papers_budgets(unit: str, task: str, inputs: int) -> None:
    """configs/model/<unit>.yaml with the budget instead of the hidden size: Table 1's printed
    count gives back Table 1's size, whose own count is the printed one to its 0.1k."""
    cfg = _compose([f"model={unit}", "model.hidden_size=null"])
    options = {**OmegaConf.to_container(cfg.model), "head": "bernoulli", "head_options": {}}
    hidden, printed = PAPER_TABLE1[task][unit]
    model = build_model(input_size=inputs, output_size=inputs, **{**options, "budget": printed})
    assert model.hidden_size == hidden
    recurrent = sum(p.numel() for p in model.rnn.parameters())
    assert abs(recurrent - printed) < 100, recurrent  # the paper prints 0.1k


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
