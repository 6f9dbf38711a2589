"""The entry point's population path: ``trainer.population_lrs=[...]`` (set by the keep_going
sweeper under ``trainer.population=auto``) trains those learning rates of one run as one
population (gru_repro.training.population), each member into the run folder its single run
would have (configs/train.yaml names it), with that run's identity.

    python -m gru_repro.train -m data=jsb 'optim.lr=1e-4,1e-3,1e-2' trainer.population=auto

Each member is checked as a single run is (another identity in its folder is refused, a
finished member is skipped) with every member's folder locked; the non-lead members get the
``.hydra/config.yaml``, ``overrides.yaml`` and ``train.log`` Hydra writes for a single run (the
lead's train.log has every member's lines, each prefixed with its ``lr=``).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from gru_repro.config.callback import refuse_another_run
from gru_repro.config.checks import ConfigError
from gru_repro.config.store import identity_of, to_objects
from gru_repro.training import run_files
from gru_repro.training.population.runs import (
    held,
    population_dir,
    remove_population_dir,
    starting_states,
    train_population,
)
from gru_repro.training.population.trainer import Member
from gru_repro.training.run_record import loops_info

log = logging.getLogger(__name__)
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job file log


def _hydra_node(cfg: DictConfig) -> DictConfig | None:
    if "hydra" in cfg:
        return cfg.hydra
    return HydraConfig.get() if HydraConfig.initialized() else None


def member_runs(
    cfg: DictConfig, run_dir: Path, lrs: list[float]
) -> list[tuple[Member, DictConfig]]:
    """(member, its task config) for each learning rate: ``cfg`` with ``optim.lr`` set, in the
    folder ``hydra.sweep.dir/hydra.sweep.subdir`` gives it (``run_dir`` for ``cfg``'s own lr)."""
    hydra_node = _hydra_node(cfg)
    task = copy.deepcopy(cfg)
    if "hydra" in task:
        with open_dict(task):
            del task["hydra"]
    full = copy.deepcopy(task)
    if hydra_node is not None:
        with open_dict(full):
            full["hydra"] = copy.deepcopy(hydra_node)
    members = []
    for lr in lrs:
        member_cfg = copy.deepcopy(task)
        member_cfg.optim.lr = float(lr)
        if float(lr) == float(cfg.optim.lr):
            folder = Path(run_dir)
        elif hydra_node is None:
            raise ConfigError(
                "trainer.population_lrs needs Hydra's run folders (python -m gru_repro.train); "
                "a library caller trains a population with training.population.train_population"
            )
        else:
            full.optim.lr = float(lr)
            folder = (Path(str(full.hydra.sweep.dir)) / str(full.hydra.sweep.subdir)).absolute()
        member = Member(
            run_dir=folder,
            lr=float(lr),
            config=OmegaConf.to_container(member_cfg, resolve=True),
            identity=identity_of(member_cfg),
        )
        members.append((member, member_cfg))
    return members


def _write_hydra_files(member: Member, member_cfg: DictConfig, lead_dir: Path) -> None:
    """The ``.hydra/`` files of a single run, for a member whose folder Hydra did not start."""
    target = member.run_dir / ".hydra"
    if member.run_dir == lead_dir or (target / "config.yaml").is_file():
        return
    target.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(member_cfg, target / "config.yaml")
    lead_overrides = lead_dir / ".hydra" / "overrides.yaml"
    if lead_overrides.is_file():
        overrides = [
            f"optim.lr={member.lr}" if o.startswith("optim.lr=") else o
            for o in OmegaConf.load(lead_overrides)
        ]
        OmegaConf.save(OmegaConf.create(overrides), target / "overrides.yaml")


class _MemberLog(logging.Filter):
    """A member's train.log: its own lines (prefixed with its label) and the shared ones."""

    def __init__(self, label: str, labels: list[str]) -> None:
        super().__init__()
        self.mine, self.others = f"{label}: ", tuple(f"{o}: " for o in labels if o != label)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return message.startswith(self.mine) or not message.startswith(self.others)


@contextmanager
def _member_logs(members: list[Member], lead_dir: Path) -> Iterator[None]:
    """Each non-lead member's train.log (Hydra writes the lead's, with every member's lines)."""
    root, handlers = logging.getLogger(), []
    labels = [m.label for m in members]
    for m in members:
        if m.run_dir == lead_dir:
            continue
        handler = logging.FileHandler(m.run_dir / "train.log")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(_MemberLog(m.label, labels))
        root.addHandler(handler)
        handlers.append(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


def run_population(
    cfg: DictConfig, run_dir: str | Path, *, settings, checks: Callable = nullcontext
) -> list[dict]:
    """Lock every member's folder, skip the finished ones, train the rest as one population;
    each member's final metrics (``{"status": "skipped", "run_dir": ...}`` for one that had
    already finished), in lr order. ``settings``: the checked ``TrainerSettings``;
    ``checks()``: a context manager around the setup (the checks, the data, the checkpoints to
    resume from), which turns the library's errors into config errors; on one, the member
    folders this call created are removed again."""
    from gru_repro.data import load_configured_splits

    with checks():
        config = to_objects(cfg)
        lrs = [float(lr) for lr in settings.population_lrs]
        if float(config.optim.lr) not in lrs:
            raise ConfigError(
                f"optim.lr={config.optim.lr} is not in trainer.population_lrs={lrs}: the run's "
                "own lr leads its population"
            )
        if len(set(lrs)) != len(lrs):
            raise ConfigError(f"trainer.population_lrs={lrs} repeats a learning rate")
        runs = member_runs(cfg, Path(run_dir), lrs)
    members = [m for m, _ in runs]
    folder = population_dir(members)
    new = [m.run_dir for m in members if not m.run_dir.exists()]
    new_folder = not folder.exists()
    results = [{"status": "skipped", "run_dir": str(m.run_dir)} for m in members]
    torch.set_num_threads(settings.threads)
    training = False
    try:
        with held(members, folder):
            with checks():
                todo = []
                for k, (member, _) in enumerate(runs):
                    if not settings.force:
                        refuse_another_run(member.run_dir, member.identity)
                        if run_files.is_finished(member.run_dir):
                            log.info(
                                "already finished (trainer.force=true retrains): %s", member.run_dir
                            )
                            continue
                    todo.append(k)
                if todo:
                    splits = load_configured_splits(config.data)
                    states = starting_states([members[k] for k in todo], folder, settings)
                    loops_info(settings)  # trainer.backend=cpp without a build: an error now
            training = True  # from here on, errors are bugs
            if todo:
                for k in todo:
                    _write_hydra_files(members[k], runs[k][1], Path(run_dir))
                with _member_logs([members[k] for k in todo], Path(run_dir)):
                    trained = train_population(
                        splits,
                        members=[members[k] for k in todo],
                        seed=config.seed,
                        model_options=dataclasses.asdict(config.model),
                        optim_options=dataclasses.asdict(config.optim),
                        settings=settings,
                        run_info={"dataset": config.data.name},
                        folder=folder,
                        states=states,
                    )
                for k, metrics in zip(todo, trained, strict=True):
                    results[k] = metrics
    except Exception:
        if not training:  # a config error: no folder this call made is left behind
            for run_folder in new:
                _remove_if_only_started(run_folder)
            if new_folder:
                remove_population_dir(folder)
        raise
    remove_population_dir(folder)
    return results


def _remove_if_only_started(run_dir: Path) -> None:
    """Remove a member folder this call created that holds no run (only its lock file)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".run.lock"}:
        shutil.rmtree(run_dir, ignore_errors=True)
