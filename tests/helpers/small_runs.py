"""The real training config shrunk to seconds, and a finished run made to look killed."""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gru_repro.train import CONFIG_DIR


def small_config(*overrides: str):
    """The real config, shrunk to seconds: tiny synthetic data, one epoch."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(
            "train",
            overrides=[
                "data.n_train=8", "data.n_valid=4", "data.n_test=4", "data.max_length=20",
                "trainer.max_epochs=1", "trainer.batch_size=4", *overrides,
            ],
        )  # fmt: skip


def mark_interrupted(run_dir: Path) -> None:
    """Make a finished run look killed mid-training: metrics.json says running, last.pt stays."""
    path = run_dir / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "status": "running"}))
