"""Hydra entry point: ``python -m gru_repro.train data=jsb model=gru optim.lr=1e-3 seed=1``.

The only library module that imports Hydra. It turns the config into plain typed arguments,
skips runs whose metrics.json says they finished (refusing, as a config error, a folder whose
run was made with another config), and reports config errors (unknown unit, negative noise std,
missing data, ...) as one line on stderr with exit code 2, before training.
A diverged run is a normal outcome (status ``diverged``, exit code 0) so that sweeps go on.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gru_repro.training import run_files

log = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
CONFIG_ERROR_EXIT = 2
# The output layer each kind of data needs: one sigmoid per note for binary piano rolls, the
# paper's Gaussian mixture for real-valued audio samples (data/registry.py names each kind).
HEAD_FOR_KIND = {"music": "bernoulli", "speech": "gmm"}


class ConfigError(ValueError):
    """A config value that cannot work; raised before any training starts."""


def _progress(value: object, multirun: bool) -> bool:
    if value == "auto":
        return sys.stderr.isatty() and not multirun and not os.environ.get("CI")
    if isinstance(value, bool):
        return value
    raise ConfigError(f"trainer.progress must be auto, true or false, got {value!r}")


def _none_if_empty(value: object) -> object:
    return None if value in ("", None) else value


def check_head_fits_data(head: str, data_name: str) -> None:
    """ConfigError when ``head`` is another kind of data's output layer (a Bernoulli head on
    audio, a mixture on piano rolls); unknown names are left to their own checks."""
    from gru_repro.data.registry import LOADERS

    spec = LOADERS.get(data_name)
    needed = HEAD_FOR_KIND.get(spec.kind) if spec is not None else None
    if needed is not None and head in HEAD_FOR_KIND.values() and head != needed:
        raise ConfigError(
            f"model.head={head} does not fit data={data_name}: {spec.kind} data needs "
            f"model.head={needed}; drop the model.head override (the configs choose the head)"
        )


def _has_last(run_dir: Path) -> bool:
    return (run_dir / "checkpoints" / "last.pt").is_file()


def setup(cfg: DictConfig, run_dir: str | Path, *, multirun: bool = False):
    """Load the data and build the ``Trainer`` for ``cfg`` in ``run_dir``; None when the run
    had already finished (and trainer.force is false).

    A finished or interrupted run in ``run_dir`` made with a config that differs beyond
    ``resume_state.RUN_ONLY_KEYS`` is neither skipped nor resumed: ConfigMismatchError (a
    ValueError, so a one-line config error), unless trainer.force is true (retrain from scratch).

    Every config error (ConfigError, the library's ValueError / DataError) is raised here,
    before training starts.
    """
    from gru_repro.data import load_splits
    from gru_repro.training.loop import Trainer
    from gru_repro.training.resume_state import check_same_config, saved_config
    from gru_repro.training.settings import TrainerSettings

    run_dir = Path(run_dir)
    check_head_fits_data(str(cfg.model.get("head", "")), str(cfg.data.get("name", "")))
    trainer_options = OmegaConf.to_container(cfg.trainer, resolve=True)
    threads = int(trainer_options.pop("threads", 1))
    trainer_options["progress"] = _progress(trainer_options.get("progress", "auto"), multirun)
    settings = TrainerSettings.from_dict(trainer_options)

    finished = run_files.is_finished(run_dir)
    if not settings.force and (finished or (settings.resume and _has_last(run_dir))):
        # skip or resume only the run this config describes, never another one's (refused)
        check_same_config(saved_config(run_dir), OmegaConf.to_container(cfg, resolve=True), run_dir)
    if finished and not settings.force:
        status = run_files.read_metrics(run_dir)["status"]
        log.info("already finished (%s): %s; trainer.force=true trains again", status, run_dir)
        return None
    if settings.max_epochs < 1:
        raise ConfigError(f"trainer.max_epochs must be at least 1, got {settings.max_epochs}")

    torch.set_num_threads(max(1, threads))
    data_options = OmegaConf.to_container(cfg.data, resolve=True)
    data_name = data_options.pop("name", None)
    if not data_name:
        raise ConfigError("the data config has no `name` key: pick one with data=<name>")
    # data configs carry data_dir / mirror (interpolated from paths.*); fall back to paths.*
    data_dir = data_options.pop("data_dir", None) or cfg.paths.data_dir
    mirror = _none_if_empty(data_options.pop("mirror", cfg.paths.get("data_mirror")))
    splits = load_splits(data_name, data_dir=data_dir, mirror=mirror, **data_options)

    trainer = Trainer(
        splits,
        run_dir=run_dir,
        seed=int(cfg.seed),
        model_options=OmegaConf.to_container(cfg.model, resolve=True),
        optim_options=OmegaConf.to_container(cfg.optim, resolve=True),
        settings=settings,
        run_info={"dataset": data_name, "run_dir": str(run_dir)},
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    return trainer


def run(cfg: DictConfig, run_dir: str | Path, *, multirun: bool = False) -> dict | None:
    """Set up and train one run; its final metrics, or None when it had already finished."""
    trainer = setup(cfg, run_dir, multirun=multirun)
    return None if trainer is None else trainer.fit()


def _is_config_error(exc: BaseException) -> bool:
    from gru_repro.data import DataError

    if isinstance(exc, TypeError):  # a stale config key reaching a library function
        return "unexpected keyword argument" in str(exc)
    return isinstance(exc, (ValueError, LookupError, FileNotFoundError, DataError, ImportError))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        trainer = setup(cfg, hc.runtime.output_dir, multirun=multirun)
    except Exception as exc:
        if not _is_config_error(exc):
            raise
        log.debug("config error", exc_info=exc)  # full traceback in the run's log file only
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT)
    if trainer is not None:
        trainer.fit()  # errors from here on are bugs: let them show their traceback


def main() -> None:
    """Console script ``gru-repro-train``."""
    _hydra_main()


if __name__ == "__main__":
    main()
