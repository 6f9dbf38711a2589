"""A report names where its runs were made: each run's commit, that commit's date and the
run's machine (from metrics.json), not only the machine and date of the report build."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fake_runs import write_fake_run

from gru_repro.provenance import commit_date, run_origins
from gru_repro.reports.build import build_reports
from gru_repro.reports.protocol import ExperimentPlan, Protocol

pytestmark = pytest.mark.subprocess

REPO_ROOT = Path(__file__).resolve().parents[2]
MACHINE = "lab-box: Linux, Some CPU, 4 CPU cores; Python 3.11, torch 2.13.0"


def _repo_with_commits(path: Path, dates: list[str]) -> list[str]:
    """A git repository with one commit per committer date; their hashes."""

    def git(*args: str, date: str | None = None) -> str:
        env = dict(os.environ, GIT_COMMITTER_DATE=date or "", GIT_AUTHOR_DATE=date or "")
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=path, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    git("init", "-q")
    hashes = []
    for i, date in enumerate(dates):
        (path / "f.txt").write_text(str(i))
        git("add", "f.txt")
        git("commit", "-qm", f"c{i}", date=date)
        hashes.append(git("rev-parse", "HEAD"))
    return hashes


def test_commit_date_of_a_commit_dirty_or_not(tmp_path: Path) -> None:
    (sha,) = _repo_with_commits(tmp_path, ["2020-01-02T03:04:05+00:00"])
    assert commit_date(sha, tmp_path) == "2020-01-02 03:04 UTC"
    assert commit_date(sha + "+dirty", tmp_path) == "2020-01-02 03:04 UTC"
    assert commit_date("0" * 40, tmp_path) is None  # not in this history
    assert commit_date("unknown", tmp_path) is None


def test_run_origins_group_by_commit_and_machine_oldest_first(tmp_path: Path) -> None:
    old, new = _repo_with_commits(
        tmp_path, ["2021-05-01T10:00:00+00:00", "2021-05-02T10:00:00+00:00"]
    )
    metrics = [
        {"git_commit": new, "machine": MACHINE},
        {"git_commit": new, "machine": MACHINE},
        {"git_commit": old + "+dirty"},  # older runs record no machine
        {},  # no commit either
    ]
    origins = run_origins(metrics, tmp_path)
    assert [(o.commit, o.commit_date, o.machine, o.runs) for o in origins] == [
        (old + "+dirty", "2021-05-01 10:00 UTC", None, 1),
        (new, "2021-05-02 10:00 UTC", MACHINE, 2),
        ("unknown", None, None, 1),
    ]


def test_results_readme_names_the_runs_commits_dates_and_machines(tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=(1e-3, 1e-2), seeds=(1, 2))
    protocol = Protocol("test", (plan,), "provenance")
    runs = tmp_path / "runs"
    folders = [
        write_fake_run(runs, "music/jsb", "gru", lr, seed, valid_nll=3.0 + lr)
        for lr, seed in ((1e-3, 1), (1e-2, 1), (1e-3, 2))
    ]
    for i, folder in enumerate(folders):  # two runs on a known machine, one older run
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["git_commit"] = head
        if i < 2:
            metrics["machine"] = MACHINE
        (folder / "metrics.json").write_text(json.dumps(metrics))
    build_reports(runs, tmp_path / "out", protocol)
    readme = (tmp_path / "out" / "README.md").read_text()
    date = commit_date(head)
    assert date is not None
    assert f"| `{head}` | {date} | {MACHINE} | 2 |" in readme
    assert f"| `{head}` | {date} | not recorded" in readme and "| 1 |" in readme
    assert f"dates of the runs: from {date} to {date}" in readme
    assert "(3 runs read)" in readme and "reports built" in readme
