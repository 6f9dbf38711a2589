"""``hydra.callbacks.check_before_writing``: a single run's config is checked before Hydra
creates its run folder (``on_run_start`` runs before Hydra writes ``.hydra/`` and
``train.log``), so a config error writes nothing: not into a new folder, and not over the
``.hydra/`` of a run that a refused invocation names. In a multirun the ``keep_going`` sweeper
checks each job's config the same way before launching it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gru_repro.config.checks import ConfigError
from gru_repro.config.errors import CONFIG_ERROR_EXIT, CONFIG_ERRORS, one_line
from gru_repro.config.identity import identity_diff
from gru_repro.config.store import identity_of, to_objects
from gru_repro.training import run_files
from gru_repro.training.run_lock import RunFolderLock


def refuse_another_run(run_dir: Path, identity: dict) -> None:
    """ConfigError when ``run_dir`` holds a run with another identity (differing keys named)."""
    saved = run_files.saved_identity(run_dir)
    if saved is not None and saved != identity:
        raise ConfigError(
            f"{run_dir} holds another run ({'; '.join(identity_diff(saved, identity))}); "
            "train into another folder, or trainer.force=true to retrain it from scratch"
        )


class CheckBeforeWriting(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            HydraConfig.instance().set_config(config)  # the run folder's name reads it
            settings = to_objects(config).trainer  # every type, range and choice
            run_dir = Path(config.hydra.run.dir)
            if not settings.force:
                refuse_another_run(run_dir, identity_of(config))
            if run_dir.is_dir():
                with RunFolderLock(run_dir):  # in use by another process: refused here already
                    pass
        except CONFIG_ERRORS as exc:
            # Hydra turns a callback's exception into a warning and goes on: exit here instead
            print(f"error: {one_line(exc)}", file=sys.stderr)
            sys.exit(CONFIG_ERROR_EXIT)
