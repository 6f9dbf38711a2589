"""Where a population's runs start from, and the population checkpoint.

A population of members (training/population/trainer.py) resumes from each member's own
checkpoints/last.pt and from the population checkpoint ``population-<key>/population.pt``
beside the members' folders, written every epoch before the members' last.pt: a member whose
last.pt is behind it (the process was killed between the two) takes the population's entry,
so all members resume at the same epoch. Members that still end up at different update counts
(one was resumed as a single run in between, say) train as one population per count, one after
the other. The population folder is locked while it trains and removed once every member has
finished.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from gru_repro.atomic import atomic_torch_save
from gru_repro.config.identity import identity_hash
from gru_repro.training.checkpoint import load_checkpoint, plain_data
from gru_repro.training.population.trainer import Member, PopulationTrainer
from gru_repro.training.run_lock import RunFolderLock
from gru_repro.training.settings import TrainerSettings

log = logging.getLogger(__name__)

POPULATION_FILE = "population.pt"


def population_dir(members: Sequence[Member]) -> Path:
    """The population's folder: beside the members' run folders (in their common parent),
    named by the members' identities, so the same learning-rate group finds it again."""
    parent = Path(os.path.commonpath([str(Path(m.run_dir).absolute()) for m in members]))
    if len(members) == 1:
        parent = parent.parent
    key = identity_hash({"members": sorted(identity_hash(plain_data(m.identity)) for m in members)})
    return parent / f"population-{key}"


@contextmanager
def held(members: Sequence[Member], folder: Path) -> Iterator[None]:
    """Hold every member's run-folder lock and the population folder's for the block
    (ConfigError naming the first folder another process holds)."""
    with ExitStack() as stack:
        for m in members:
            stack.enter_context(RunFolderLock(m.run_dir))
        stack.enter_context(RunFolderLock(folder))
        yield


def _updates(state: dict | None) -> int:
    return -1 if state is None else int(state["run_state"]["updates"])


def starting_states(
    members: Sequence[Member], folder: Path, settings: TrainerSettings
) -> list[dict | None]:
    """Each member's state to resume from (its last.pt, or the population checkpoint's entry
    when that is further on, which is then written to the member's last.pt), None to start
    fresh. ``trainer.resume=false`` or ``trainer.force=true``: all fresh."""
    if not settings.resume or settings.force:
        return [None] * len(members)
    saved: dict = {}
    path = folder / POPULATION_FILE
    if path.is_file():
        try:
            saved = load_checkpoint(path)["members"]
        except (ValueError, KeyError) as exc:  # torn: the members' own last.pt still hold
            log.warning("ignoring the population checkpoint %s: %s", path, exc)
    states = []
    for m in members:
        last = Path(m.run_dir) / "checkpoints" / "last.pt"
        own = load_checkpoint(last) if last.is_file() else None
        entry = saved.get(identity_hash(plain_data(m.identity)))
        if entry is not None and _updates(entry) > _updates(own):
            atomic_torch_save(entry, last)  # the member folder holds its own state again
            own = entry
        states.append(own)
    return states


def train_population(
    splits,
    *,
    members: Sequence[Member],
    seed: int,
    model_options: dict,
    optim_options: dict,
    settings: TrainerSettings,
    run_info: dict | None = None,
    folder: Path | None = None,
    states: Sequence[dict | None] | None = None,
    fused: bool | None = None,
) -> list[dict]:
    """Train ``members`` (none finished) to their ends; each one's final metrics, in order.

    The caller holds the locks (:func:`held`) of the members and of ``folder`` (default
    :func:`population_dir`); ``states``: :func:`starting_states`, read here when not given."""
    folder = population_dir(members) if folder is None else folder
    if states is None:
        states = starting_states(members, folder, settings)
    groups: dict[int, list[int]] = {}
    for k, state in enumerate(states):
        groups.setdefault(max(0, _updates(state)), []).append(k)
    results: dict[int, dict] = {}
    for updates, group in sorted(groups.items(), reverse=True):
        if len(groups) > 1:
            log.info("members %s resume at update %d", [members[k].label for k in group], updates)
        trainer = PopulationTrainer(
            splits,
            members=[members[k] for k in group],
            seed=seed,
            model_options=model_options,
            optim_options=optim_options,
            settings=settings,
            run_info=run_info,
            states=[states[k] for k in group],
            state_path=folder / POPULATION_FILE,
            fused=fused,
        )
        for k, metrics in zip(group, trainer.fit(), strict=True):
            results[k] = metrics
    return [results[k] for k in range(len(members))]


def remove_population_dir(folder: Path) -> None:
    """Remove a finished population's folder (its lock file and nothing else is left)."""
    if folder.is_dir() and not (folder / POPULATION_FILE).exists():
        shutil.rmtree(folder, ignore_errors=True)
