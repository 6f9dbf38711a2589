"""Shared fixtures: where the real data mirror is, and a quiet torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # Tests are small; one thread keeps them fast and deterministic on 2-core machines.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The folder laid out like the project's data mirror (poly/, fsdd/).

    CI sets DATA_MIRROR to ../shared/data; a developer checkout falls back to the same place.
    """
    mirror = Path(os.environ.get("DATA_MIRROR") or REPO_ROOT.parent / "shared" / "data")
    if not (mirror / "poly").is_dir():
        pytest.fail(
            f"data mirror {mirror} has no poly/ folder: set DATA_MIRROR to a folder laid out "
            "like ../shared/data (see data/README.md)"
        )
    return mirror
