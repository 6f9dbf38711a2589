"""Where a result came from: the code's git commit and a one-line machine description.

Used by the training loop (`git_commit` in metrics.json), the reports (results/README.md),
scripts/reproduce.py (reproduce.json) and scripts/table1.py, so every file names its code the
same way.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
GIT_TIMEOUT_S = 10


def _git(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
    )
    return done.stdout.strip()


# What a run's numbers depend on: changes here make a checkout "+dirty". Results, reports and
# docs (rewritten while sweeps run) do not.
CODE_PATHS = ("src", "configs", "scripts", "pyproject.toml", "requirements.lock", "Makefile")


def git_commit(repo: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of ``repo`` (default: this package's checkout), with ``+dirty``
    when tracked files under :data:`CODE_PATHS` are modified; ``unknown`` outside a git
    checkout or without git.

    The default is the package's folder, not the current directory, because Hydra runs and
    tests change directory to folders outside the checkout.
    """
    cwd = Path(repo) if repo is not None else _PACKAGE_DIR
    try:
        commit = _git(["rev-parse", "HEAD"], cwd)
        top = Path(_git(["rev-parse", "--show-toplevel"], cwd))
        dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS], top)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo where there is one (Linux), else platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    """One line: host, OS, CPU model and core count, Python and torch versions."""
    try:
        torch_version = version("torch")  # metadata only: importing torch costs seconds
    except PackageNotFoundError:
        torch_version = "not installed"
    return (
        f"{platform.node()}: {platform.system()} {platform.release()}, {cpu_model()}, "
        f"{os.cpu_count()} CPU cores; Python {platform.python_version()}, torch {torch_version}"
    )
