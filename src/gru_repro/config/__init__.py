"""The typed config: schema dataclasses (one place for types, choices and ranges), the run
identity (the resolved config minus run-only keys), and their registration with Hydra."""

from gru_repro.config.checks import ConfigError
from gru_repro.config.identity import RUN_ONLY_KEYS, identity_diff, identity_hash, run_identity

__all__ = ["RUN_ONLY_KEYS", "ConfigError", "identity_diff", "identity_hash", "run_identity"]
