"""Shared fixtures (where the real data mirror is, a quiet torch) and the markers that follow
from them: a test that reads the data mirror is marked ``real_data`` without saying so.

The test folders follow the package (data/, models/, training/, reports/, sampling/, configs/)
plus cli/ for the entry points, installs and sweeps run as a user runs them; helpers/ holds
what several tests share, importable by module name (``from unit_cases import ...``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from gru_repro.models import kernels, loops_python

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).with_name("helpers")))

# A developer checkout without DATA_MIRROR reads the mirror beside it, as the data_mirror
# fixture does; set here so that the entry points the tests start as subprocesses see it too.
_BESIDE = REPO_ROOT.parent / "shared" / "data"
if not os.environ.get("DATA_MIRROR") and (_BESIDE / "poly").is_dir():
    os.environ["DATA_MIRROR"] = str(_BESIDE)


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that reads the real data mirror (through the data_mirror fixture)."""
    for item in items:
        if "data_mirror" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_data)


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # Tests are small; one thread keeps them fast and deterministic on 2-core machines.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The folder laid out like the project's data mirror (poly/, fsdd/).

    CI sets DATA_MIRROR to ../shared/data; a developer checkout falls back to the same place.
    """
    mirror = Path(os.environ.get("DATA_MIRROR") or _BESIDE)
    if not (mirror / "poly").is_dir():
        pytest.fail(
            f"data mirror {mirror} has no poly/ folder: set DATA_MIRROR to a folder laid out "
            "like ../shared/data (see data/README.md)"
        )
    return mirror


@pytest.fixture(scope="session")
def cpp_loops():
    """The compiled extension; an error (not a skip) if it cannot be built."""
    with kernels.use_backend("cpp"):
        module = kernels.loops()
    assert module is not loops_python
    return module


# Results lines that tests want shown in `make test`'s output (e.g. the speech runs' NLL
# against the single-Gaussian baseline), printed once at the end of the session.
_RESULT_LINES: list[str] = []


@pytest.fixture
def report_result():
    """Call with one line of text to show it in the test session's closing summary."""
    return _RESULT_LINES.append


def pytest_terminal_summary(terminalreporter) -> None:
    if _RESULT_LINES:
        terminalreporter.section("results reported by tests")
        for line in _RESULT_LINES:
            terminalreporter.write_line(line)
