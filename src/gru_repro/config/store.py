"""Hydra's side of the typed config: the schemas in the ConfigStore, the identity resolver of
run folder names, one-line messages for Hydra's and OmegaConf's errors, and the composed config
as plain dataclasses. Only the entry points (gru_repro.train, the sweeper) import this module.

configs/<group>/<option>.yaml extends its schema through its defaults list:

    defaults:
      - /schema/data/music@_here_   # gru_repro.config.schema.MusicData
      - _self_
"""

from __future__ import annotations

import copy
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

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
