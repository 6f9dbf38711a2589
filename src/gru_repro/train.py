"""Hydra entry point: ``python -m gru_repro.train data=jsb model=gru optim.lr=1e-3 seed=1``.

The only library module that runs Hydra. The composed config is checked against the typed
schema (gru_repro.config) before anything is written; a config error of any origin (an unknown
group option or key, a wrong type, a value out of range, missing data) is one line on stderr
and exit code 2. In a multirun the bad job is recorded and the other jobs run (the
``keep_going`` sweeper); the sweep then exits 1 naming the failed jobs.

A run folder holds one run identity (gru_repro.config.identity): a finished run is skipped, an
interrupted one resumed, and a folder holding another identity is refused with the differing
keys named (trainer.force=true retrains). A diverged run is a normal outcome (status
``diverged``, exit code 0) so that sweeps go on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gru_repro import config_dir
from gru_repro.config.callback import refuse_another_run
from gru_repro.config.checks import ConfigError
from gru_repro.config.errors import CONFIG_ERROR_EXIT, CONFIG_ERRORS, SweepFailed, one_line
from gru_repro.config.identity import identity_hash
from gru_repro.config.store import compose_run, identity_of, package_configs, register, to_objects
from gru_repro.data.errors import DataError
from gru_repro.training import run_files
from gru_repro.training.run_lock import RunFolderLock

log = logging.getLogger(__name__)

CONFIG_DIR = str(config_dir())  # the package's configs: the console script works from any folder
register()


def _auto_progress(multirun: bool) -> bool:
    return sys.stderr.isatty() and not multirun and not os.environ.get("CI")


def _settings(config, multirun: bool):
    """The checked ``TrainerSettings``, the progress bar decided, the device available."""
    settings = config.trainer
    if settings.progress is None:
        settings = dataclasses.replace(settings, progress=_auto_progress(multirun))
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but this torch build sees no GPU; use cpu")
    return settings


def setup(cfg: DictConfig, run_dir: str | Path, *, multirun: bool = False):
    """Check ``cfg``, load the data and build the ``Trainer`` for ``run_dir``; None when the
    run there had already finished (and trainer.force is false).

    The caller holds the folder's ``RunFolderLock``. Every config error is raised here, before
    training starts, as a ``ConfigError`` (or Hydra's / OmegaConf's / the data's own error).
    """
    from gru_repro.data import load_configured_splits
    from gru_repro.training.loop import Trainer

    run_dir = Path(run_dir)
    config = to_objects(cfg)  # every range and choice check
    settings = _settings(config, multirun)

    identity = identity_of(cfg)
    if not settings.force:
        refuse_another_run(run_dir, identity)
        if run_files.is_finished(run_dir):
            status = run_files.read_metrics(run_dir)["status"]
            log.info("already finished (%s): %s; trainer.force=true trains again", status, run_dir)
            return None

    torch.set_num_threads(settings.threads)
    splits = load_configured_splits(config.data)
    return Trainer(
        splits,
        run_dir=run_dir,
        seed=config.seed,
        model_options=dataclasses.asdict(config.model),
        optim_options=dataclasses.asdict(config.optim),
        settings=settings,
        run_info={"dataset": config.data.name, "run_dir": str(run_dir)},
        config=OmegaConf.to_container(cfg, resolve=True),
        identity=identity,
    )


@contextmanager
def _config_errors() -> Iterator[None]:
    """The library's checks of a value (ValueError, LookupError, DataError) as ConfigError."""
    try:
        yield
    except (ValueError, LookupError, DataError) as exc:
        if isinstance(exc, CONFIG_ERRORS):
            raise
        raise ConfigError(one_line(exc)) from exc


def run(
    cfg: DictConfig, run_dir: str | Path, *, multirun: bool = False
) -> dict | list[dict] | None:
    """Lock ``run_dir``, set up and train one run; its final metrics, or None when it had
    already finished. With ``trainer.population_lrs`` (gru_repro.train_population), the
    population those learning rates make: a list of each member's final metrics (status
    ``skipped`` and its ``run_dir`` for one that had finished)."""
    if cfg.trainer.population_lrs:
        from gru_repro.train_population import run_population

        with _config_errors():
            settings = _settings(to_objects(cfg), multirun)
        return run_population(cfg, run_dir, settings=settings, checks=_config_errors)
    with RunFolderLock(run_dir):
        with _config_errors():
            trainer = setup(cfg, run_dir, multirun=multirun)
        return None if trainer is None else trainer.fit()  # from here on, errors are bugs


def planned_runs(
    overrides: list[str], units: list[str], lrs: list[float], seeds: list[int]
) -> dict[tuple[str, float, int], tuple[str, dict]]:
    """(folder relative to paths.output_root, identity) of each run that ``overrides`` plus
    ``model=<unit> optim.lr=<lr> seed=<seed>`` describe: the folder a sweep over them creates
    (configs/train.yaml names it), so scripts/reproduce.py and the reports find every run of a
    protocol without training it. One composition per unit (~0.1 s each)."""
    runs = {}
    with package_configs():
        for unit in units:
            cfg = compose_run([*overrides, f"model={unit}"])
            for lr in lrs:
                for seed in seeds:
                    cfg.optim.lr, cfg.seed = float(lr), int(seed)  # re-resolves the name below
                    sweep_dir = Path(cfg.hydra.sweep.dir).relative_to(cfg.paths.output_root)
                    folder = f"{sweep_dir.as_posix()}/{cfg.hydra.sweep.subdir}"
                    runs[unit, lr, seed] = (folder, identity_of(cfg))
    return runs


def plan_runs(plan, extra: list[str] = ()) -> dict[tuple[str, float, int], tuple[str, dict]]:
    """``planned_runs`` of a protocol's ``ExperimentPlan`` (gru_repro.reports.protocol): its
    experiment file and overrides (``plan.command``) and ``extra`` ones, every unit x lr x
    seed."""
    return planned_runs([*plan.command, *extra], list(plan.units), list(plan.lrs), list(plan.seeds))


def planned_folders(
    overrides: list[str], units: list[str], lrs: list[float], seeds: list[int]
) -> dict[tuple[str, float, int], str]:
    """``planned_runs``' folders only."""
    return {key: run[0] for key, run in planned_runs(overrides, units, lrs, seeds).items()}


def _remove_if_empty_of_runs(run_dir: Path) -> None:
    """Undo Hydra's start of a folder that holds no run (a data error found after Hydra wrote
    ``.hydra/`` and ``train.log``); a folder with a run's files is left as it is."""
    made_by_hydra = {".hydra", "train.log", ".run.lock"}
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= made_by_hydra:
        shutil.rmtree(run_dir, ignore_errors=True)
        for parent in run_dir.parents:  # and the folders made for it, while empty
            try:
                parent.rmdir()
            except OSError:
                break


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> dict:
    hc = HydraConfig.get()
    run_dir, multirun = Path(hc.runtime.output_dir), hc.mode == RunMode.MULTIRUN
    try:
        metrics = run(cfg, run_dir, multirun=multirun)
    except CONFIG_ERRORS as exc:
        if not multirun:  # one line and exit 2 (Hydra would add a line of its own)
            _remove_if_empty_of_runs(run_dir)
            print(f"error: {one_line(exc)}", file=sys.stderr)
            sys.exit(CONFIG_ERROR_EXIT)
        log.error("config error: %s", one_line(exc))  # the job's log; the sweeper records it
        raise
    if metrics is None:
        return {"status": "skipped", "identity_hash": identity_hash(identity_of(cfg))}
    if isinstance(metrics, list):  # a population: the sweeper records each member
        members = [{"folder": m["run_dir"], "status": m["status"]} for m in metrics]
        return {"status": "population", "members": members}
    return {"status": metrics["status"]}


def main() -> None:
    """Console script ``gru-repro-train`` (and ``python -m gru_repro.train``)."""
    # Hydra prints its own errors over several lines with exit 1; let them reach us instead
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _hydra_main()
    except SweepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except CONFIG_ERRORS as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT)


if __name__ == "__main__":
    main()
