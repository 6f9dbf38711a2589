"""gru_repro.provenance: the commit and machine line every result file carries."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gru_repro.provenance import git_commit, machine_description

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.subprocess
def test_git_commit_names_this_checkout_from_any_directory(tmp_path: Path, monkeypatch) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(tmp_path)  # Hydra runs elsewhere: the package's checkout still counts
    commit = git_commit()
    if head:
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit) and commit.startswith(head)
    else:
        assert commit == "unknown"


def test_git_commit_outside_a_checkout_is_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"


def test_machine_description_is_one_line_with_versions() -> None:
    line = machine_description()
    assert "\n" not in line and "CPU cores" in line and "torch " in line and "Python 3." in line


@pytest.mark.subprocess
def test_dirty_means_changed_code_not_changed_results(tmp_path: Path) -> None:
    """Reports rewritten while a sweep runs must not mark its runs' code as modified."""
    if shutil.which("git") is None:
        pytest.fail("git is needed by the provenance tests (and by make reproduce)")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "src").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "src" / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "table.md").write_text("| a |\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = git_commit(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", clean)
    (tmp_path / "results" / "table.md").write_text("| b |\n")
    assert git_commit(tmp_path) == clean
    (tmp_path / "src" / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == clean + "+dirty"
