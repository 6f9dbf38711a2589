"""Hydra's side of the typed config: the schemas in the ConfigStore, the identity resolver of
run folder names, the composed config as plain dataclasses, and what an experiment's sweep
plans (composed as a run composes it). The entry points (gru_repro.train, the sweeper) and the
protocol builders (gru_repro.reports.protocol) import this module.

configs/<group>/<option>.yaml extends its schema through its defaults list:

    defaults:
      - /schema/data/music@_here_   # gru_repro.config.schema.MusicData
      - _self_
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from gru_repro import config_dir
from gru_repro.config.checks import ConfigError
from gru_repro.config.identity import identity_hash, run_identity
from gru_repro.config.schema import SCHEMAS, TrainConfig

IDENTITY_RESOLVER = "run_identity_hash"  # ${run_identity_hash:} in configs/train.yaml
RUN_GROUP_RESOLVER = "run_group"  # ${run_group:}: paths.run_group, else the data set's name


def identity_of(cfg: DictConfig) -> dict[str, Any]:
    """The identity of a composed config (Hydra's node and run-only keys left unresolved)."""

    def plain(node: Any) -> Any:
        if isinstance(node, (DictConfig, ListConfig)):
            return OmegaConf.to_container(node, resolve=True)
        return node

    return run_identity(cfg, plain)


def _identity_hash(*, _root_: DictConfig) -> str:
    return identity_hash(identity_of(_root_))


def _run_group(*, _root_: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig

    return _root_.paths.run_group or HydraConfig.get().runtime.choices["data"]


def register() -> None:
    """Store the schemas (``schema/<group>/<name>``, the root as ``train_schema``) and the
    resolver; safe to call more than once."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, options in SCHEMAS.items():
        for name, schema in options.items():
            store.store(group=f"schema/{group}", name=name, node=schema)
    if not OmegaConf.has_resolver(IDENTITY_RESOLVER):
        OmegaConf.register_new_resolver(IDENTITY_RESOLVER, _identity_hash)
    if not OmegaConf.has_resolver(RUN_GROUP_RESOLVER):
        OmegaConf.register_new_resolver(RUN_GROUP_RESOLVER, _run_group)


def to_objects(cfg: DictConfig) -> TrainConfig:
    """The composed config as dataclasses: runs every range and choice check (ConfigError)."""
    if "hydra" in cfg:  # a config Hydra composed for a run: the job's part only
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


@contextmanager
def package_configs() -> Iterator[None]:
    """Hydra's compose API over the package's configs (gru_repro.config_dir()), the schemas and
    resolvers registered: what ``python -m gru_repro.train`` composes from."""
    register()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        yield


def compose_run(overrides: Sequence[str]) -> DictConfig:
    """The config a run of ``overrides`` composes, Hydra's node included and made the current
    one (the run folder's name reads ``${hydra:runtime.choices...}``). Inside
    ``package_configs()``."""
    cfg = compose("train", list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def sweep_values(key: str, value: Any) -> list:
    """The values one ``hydra.sweeper.params`` entry sweeps (``a,b,c``; a single value is a
    sweep of one), parsed by Hydra's override grammar as the sweeper parses it: numbers come
    back as numbers."""
    override = OverridesParser.create().parse_override(f"{key}={value}")
    return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]


@dataclass(frozen=True)
class ExperimentSweep:
    """What ``python -m gru_repro.train -m experiment=<name>`` sweeps."""

    run_group: str  # paths.run_group: the folder below paths.output_root its runs go to
    units: tuple[str, ...]  # hydra.sweeper.params.model (configs/search/)
    lrs: tuple[float, ...]  # hydra.sweeper.params["optim.lr"] (configs/search/)


def experiment_sweep(experiment: str) -> ExperimentSweep:
    """The unit x learning-rate grid and the run group of configs/experiment/<experiment>.yaml,
    as its composed config holds them (ConfigError when it sweeps no units and rates)."""
    with package_configs():
        cfg = compose_run([f"experiment={experiment}"])
    params = cfg.hydra.sweeper.params or {}
    missing = [f"hydra.sweeper.params.{key}" for key in ("model", "optim.lr") if key not in params]
    if not cfg.paths.run_group:
        missing.append("paths.run_group")
    if missing:
        raise ConfigError(
            f"configs/experiment/{experiment}.yaml sets no {', '.join(missing)}: a protocol "
            "experiment includes a search (`- /search: paper` in its defaults) and names its "
            "run group"
        )
    return ExperimentSweep(
        run_group=str(cfg.paths.run_group),
        units=tuple(str(u) for u in sweep_values("model", params["model"])),
        lrs=tuple(float(lr) for lr in sweep_values("optim.lr", params["optim.lr"])),
    )
