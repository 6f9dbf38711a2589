"""A run's identity: its resolved config minus the run-only keys, and a short hash of it.

Two invocations compute the same run exactly when their identities are equal. The identity is
stored in metrics.json and in every checkpoint; skipping a finished run, resuming an
interrupted one and refusing a folder that holds another run compare identities and nothing
else, and the identity hash is part of the run folder's name (configs/train.yaml), so two
different runs never share a folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

# Keys ("group.key", or a whole group) that say how an invocation treats a run, where files
# live on this machine, how fast it runs or what extras it logs -- never what it computes.
# trainer.device is not here: it changes the numerics.
RUN_ONLY_KEYS = (
    "trainer.resume",  # whether to continue from last.pt
    "trainer.force",  # whether to retrain a finished run
    "trainer.progress",  # tqdm bar on/off
    "trainer.threads",  # torch CPU threads: speed only
    "trainer.backend",  # C++ or Python time loops: speed only (the same up to rounding)
    "trainer.eval_batch_size",  # evaluation batching: speed only (frame sums are the same)
    "trainer.log_every",  # TensorBoard train/grad_norm and train/lr point spacing
    "trainer.sample_every",  # TensorBoard samples
    "trainer.population",  # lr candidates trained in one process: each member is its single run
    "trainer.population_lrs",  # the learning rates of that process (set by the sweeper)
    "trainer.population_size",  # how many candidates share a process: speed only
    "trainer.population_exact",  # members' products per member or batched: the same up to rounding
    "paths",  # data_dir, data_mirror, output_root, run_group: where things are
    "data.data_dir",  # interpolated from paths.data_dir
    "data.mirror",  # interpolated from paths.data_mirror
    "hydra",  # Hydra's own settings (launcher, sweep folders)
)
# Keys added after runs were committed, with the value that computes what those runs computed:
# left out of the identity while they hold it, so the committed runs keep their identities and
# folders; any other value is part of the identity.
ADDED_KEY_DEFAULTS = {
    "trainer.objective": "mean",  # the per-step mean NLL (the sum: the released code's)
    "trainer.weight_noise_per": "update",
    "trainer.noisy_valid": False,
    "trainer.select_on": "clean",
    "optim.max_update_norm": None,  # no cap on the update
}
HASH_LENGTH = 8  # hex digits in folder names: 32 bits, collision-free at any sweep's size


def is_run_only(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RUN_ONLY_KEYS)


def at_old_behaviour(key: str, value: Any) -> bool:
    """Whether ``key`` is an added key holding its old behaviour (``ADDED_KEY_DEFAULTS``)."""
    if key not in ADDED_KEY_DEFAULTS:
        return False
    old = ADDED_KEY_DEFAULTS[key]
    return value == old and type(value) is type(old)  # 0 is not False


def run_identity(
    config: Mapping[str, Any], plain: Callable[[Any], Any] = lambda value: value
) -> dict[str, Any]:
    """``config`` without its run-only keys and the added keys at their old behaviour, each kept
    value passed through ``plain`` (e.g. resolving an OmegaConf node: run-only keys are left
    unresolved, Hydra's node included)."""
    identity: dict[str, Any] = {}
    for group in config:
        if is_run_only(str(group)):
            continue
        value = config[group]
        if isinstance(value, Mapping):
            kept = {k: plain(value[k]) for k in value if not is_run_only(f"{group}.{k}")}
            identity[group] = {
                k: v for k, v in kept.items() if not at_old_behaviour(f"{group}.{k}", v)
            }
        else:
            identity[group] = plain(value)
    return identity


def identity_hash(identity: dict[str, Any]) -> str:
    """Short, stable hash of an identity (sorted keys, exact float reprs)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


_ABSENT = "<absent>"


def identity_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key old -> new`` for every key whose value differs (or exists on one side only)."""
    a, b = _flat(old), _flat(new)
    return [
        f"{key} {a.get(key, _ABSENT)!r} -> {b.get(key, _ABSENT)!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, _ABSENT) != b.get(key, _ABSENT)
    ]
