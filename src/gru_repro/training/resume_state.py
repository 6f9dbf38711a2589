"""Everything beyond the weights that a resumed run needs to continue exactly where it was:
counters, curve history, optimizer / scheduler / early-stopping state, and all generators."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gru_repro.training import run_files
from gru_repro.training.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state

# trainer keys that may differ between the interrupted and the resuming invocation
RESUME_ONLY_KEYS = ("resume", "force", "progress")

# Config keys ("group.key", or a whole group) that may differ between the invocation that made
# a run folder and one that skips (finished) or resumes (interrupted) the run in it: they say how
# this invocation treats the folder, where files live on this machine, how fast it runs or what
# extras it logs -- never what the run computes. A difference in any other key means the folder
# holds another experiment: train.py refuses it (exit code 2) unless trainer.force=true.
# trainer.device is deliberately not here: it changes the numerics, and resuming a CPU run on a
# GPU (or back) is untested. Hydra's own keys (hydra.*) never reach the saved config.
RUN_ONLY_KEYS = (
    "trainer.resume",  # whether to continue from last.pt
    "trainer.force",  # whether to retrain a finished run
    "trainer.progress",  # tqdm bar on/off
    "trainer.threads",  # torch CPU threads: speed only
    "trainer.eval_batch_size",  # evaluation batching: speed only (frame sums are the same)
    "trainer.log_every",  # TensorBoard train/grad_norm and train/lr point spacing
    "trainer.sample_every",  # TensorBoard samples
    "paths",  # data_dir, data_mirror, output_root: where things are on this machine
    "data.data_dir",  # interpolated from paths.data_dir
    "data.mirror",  # interpolated from paths.data_mirror
)


@dataclass
class RunState:
    epoch: int = 0  # last finished epoch (0 = only the initial evaluation)
    updates: int = 0
    overflow_updates: int = 0  # updates whose gradient was recomputed on a scaled loss (clipping)
    wall_seconds: float = 0.0  # training wall time so far, summed over resumed sessions
    tb_start_walltime: float | None = None  # unix time of update 0 on TensorBoard's time axis
    initial_valid_nll: float | None = None  # reference for the divergence test
    diverged_epoch: int | None = None
    diverged_reason: str | None = None
    history: list[dict] = field(default_factory=list)  # curves.csv rows

    def capture(self, trainer) -> dict:
        """The resume-only part of last.pt (plain data and tensors: weights_only-safe)."""
        return {
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict(),
            "early_stopping": trainer.stopper.state_dict(),
            "weight_noise": trainer.noise.state_dict(),
            "shuffle_generator": trainer.shuffle_generator.get_state(),
            "rng": capture_rng_state(),
            "run_state": {
                "epoch": self.epoch,
                "updates": self.updates,
                "overflow_updates": self.overflow_updates,
                "wall_seconds": self.wall_seconds,
                "tb_start_walltime": self.tb_start_walltime,
                "initial_valid_nll": self.initial_valid_nll,
                "history": [dict(row) for row in self.history],
            },
        }

    def restore(self, trainer, bundle: dict) -> None:
        trainer.optimizer.load_state_dict(bundle["optimizer"])
        trainer.scheduler.load_state_dict(bundle["scheduler"])
        trainer.stopper.load_state_dict(bundle["early_stopping"])
        trainer.noise.load_state_dict(bundle["weight_noise"])
        trainer.shuffle_generator.set_state(bundle["shuffle_generator"])
        restore_rng_state(bundle["rng"])
        run = bundle["run_state"]
        self.epoch, self.updates = int(run["epoch"]), int(run["updates"])
        self.overflow_updates = int(run.get("overflow_updates", 0))  # absent before it existed
        self.wall_seconds = float(run["wall_seconds"])
        self.tb_start_walltime = run["tb_start_walltime"]
        self.initial_valid_nll = run["initial_valid_nll"]
        self.history = [dict(row) for row in run["history"]]


def plain_data(value):
    """Convert to types ``torch.load(weights_only=True)`` and JSON accept (dict/list/scalars/
    tensors): numpy arrays become lists, numpy scalars and paths become Python values."""
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    return str(value)


def changed_keys(old: dict, new: dict, ignored: tuple[str, ...] = RESUME_ONLY_KEYS) -> list[str]:
    """``group.key`` entries that differ between two resolved configs (one level deep)."""
    changed = []
    for group in sorted(set(old) | set(new)):
        a, b = old.get(group), new.get(group)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [
                f"{group}.{key}"
                for key in sorted(set(a) | set(b))
                if key not in ignored and a.get(key) != b.get(key)
            ]
        elif a != b:
            changed.append(group)
    return changed


class ConfigMismatchError(ValueError):
    """A run folder holds a run made with another config (see ``RUN_ONLY_KEYS``)."""


def _is_run_only(key: str, allowed: tuple[str, ...]) -> bool:
    return any(key == a or key.startswith(a + ".") for a in allowed)


def config_mismatch(
    saved: dict, current: dict, allowed: tuple[str, ...] = RUN_ONLY_KEYS
) -> list[str]:
    """``group.key`` entries whose values differ between the config a run folder was made with
    and the current one, leaving out ``allowed`` keys.

    Only keys that both configs have are compared: a key that one side lacks was added or
    removed by a code change since the run was made, and its value there is unknown (a changed
    optimizer still shows, through ``optim.name``).
    """
    mismatched = []
    for group in sorted(set(saved) & set(current)):
        a, b = saved[group], current[group]
        if isinstance(a, dict) and isinstance(b, dict):
            keys = [f"{group}.{key}" for key in sorted(set(a) & set(b)) if a[key] != b[key]]
        else:
            keys = [group] if a != b else []
        mismatched += [key for key in keys if not _is_run_only(key, allowed)]
    return mismatched


# metrics.json fields (Trainer.info) that mirror config keys: the fallback for a finished run
# that left no checkpoint (diverged before its first epoch ended)
METRICS_CONFIG_KEYS = {
    "dataset": "data.name",
    "unit": "model.unit",
    "optim": "optim.name",
    "lr": "optim.lr",
    "seed": "seed",
    "batch_size": "trainer.batch_size",
    "max_epochs": "trainer.max_epochs",
    "patience": "trainer.patience",
    "eval_every": "trainer.eval_every",
    "weight_noise": "trainer.weight_noise",
}


def saved_config(run_dir: str | Path) -> dict:
    """The resolved config the run in ``run_dir`` was made with: checkpoints/last.pt's (or
    best.pt's) ``config``, else the config fields metrics.json records; {} when unknown."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    for name in ("last.pt", "best.pt"):
        path = ckpt_dir / name
        if path.is_file():
            try:
                config = load_checkpoint(path).get("config")
            except ValueError:  # unreadable: the other file or metrics.json may still say
                continue
            if config:
                return config
    metrics = run_files.read_metrics(run_dir) or {}
    config: dict = {}
    for field_name, key in METRICS_CONFIG_KEYS.items():
        if field_name in metrics:
            group, _, name = key.rpartition(".")
            if group:
                config.setdefault(group, {})[name] = metrics[field_name]
            else:
                config[name] = metrics[field_name]
    return config


def check_same_config(saved: dict, current: dict, run_dir: str | Path) -> None:
    """Raise ``ConfigMismatchError`` (one line) when ``run_dir``'s run was made with a config
    that differs from ``current`` in more than ``RUN_ONLY_KEYS``."""
    mismatched = config_mismatch(saved, plain_data(current))
    if not mismatched:
        return

    def value(config: dict, key: str):
        group, _, name = key.partition(".")
        return config[group][name] if name else config[group]

    changes = ", ".join(f"{k} {value(saved, k)!r} -> {value(current, k)!r}" for k in mismatched)
    raise ConfigMismatchError(
        f"{run_dir} holds a run made with a different config ({changes}); use another "
        "paths.output_root (a different run folder), or trainer.force=true to retrain it from "
        "scratch"
    )
