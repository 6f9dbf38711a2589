"""Where a result came from: the code's git commit, its date and a one-line machine description.

Used by the training loop (`git_commit` and `machine` in metrics.json), the reports
(results/README.md: the commits, commit dates and machines of the runs, see `run_origins`),
scripts/reproduce.py (reproduce.json) and scripts/table1.py, so every file names its code the
same way.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
GIT_TIMEOUT_S = 10
DATE_FORMAT = "%Y-%m-%d %H:%M UTC"  # every date a result file carries
DIRTY = "+dirty"


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
    return commit + (DIRTY if dirty else "")


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


def utc_now() -> str:
    """The current date in :data:`DATE_FORMAT`."""
    return datetime.now(timezone.utc).strftime(DATE_FORMAT)


def commit_date(commit: str, repo: str | Path | None = None) -> str | None:
    """The committer date of ``commit`` (a trailing ``+dirty`` ignored) in :data:`DATE_FORMAT`,
    read from the history of ``repo`` (default: this package's checkout); None for ``unknown``,
    a commit this clone does not have (e.g. a shallow one) or without git."""
    sha = commit.removesuffix(DIRTY)
    if not sha or sha == "unknown":
        return None
    try:
        stamp = _git(["show", "-s", "--format=%ct", sha, "--"], Path(repo or _PACKAGE_DIR))
        return datetime.fromtimestamp(int(stamp), timezone.utc).strftime(DATE_FORMAT)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


@dataclass(frozen=True)
class RunOrigin:
    """Runs made from one code commit on one machine, as their metrics.json files say."""

    commit: str  # `git_commit` of metrics.json ("unknown" when absent)
    commit_date: str | None  # that commit's date: each of these runs was made at or after it
    machine: str | None  # `machine` of metrics.json; None for runs older than that field
    runs: int


def run_origins(metrics: Iterable[Mapping], repo: str | Path | None = None) -> list[RunOrigin]:
    """Group runs by (commit, machine), oldest commit first.

    metrics.json records no date of its own; the commit's date bounds it from below (a
    ``+dirty`` run was made later still, from modified code).
    """
    counts = Counter(
        (str(m.get("git_commit") or "unknown"), m.get("machine") or None) for m in metrics
    )
    dates = {commit: commit_date(commit, repo) for commit, _ in counts}
    origins = [
        RunOrigin(commit, dates[commit], machine, n) for (commit, machine), n in counts.items()
    ]
    return sorted(origins, key=lambda o: (o.commit_date or "~", o.commit, o.machine or ""))
