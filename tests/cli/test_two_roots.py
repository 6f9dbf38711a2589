"""Two roots: what a user runs goes to git-ignored outputs/, the committed results/ change only
through the maintainer targets that `make help` marks, and a fresh clone's `make
reproduce-quick` really trains (into outputs/) and leaves `git status` clean."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

REPO_ROOT = Path(__file__).resolve().parents[2]
# The targets a newcomer runs; none may name results/ in what it executes.
USER_TARGETS = ("reproduce-quick", "reports-quick", "samples", "tensorboard", "bench", "table1")
PUBLISH = {  # maintainer target -> a path it must write under results/
    "publish-quick": "--runs results/quick/runs --out results/quick",
    "publish-samples": "--out results/samples",
    "publish-bench": "--out-dir results",
    "publish-table1": "--out results/table1.md",
    "reports": "--runs results/runs --report-set full --out results",
    "reports-released": "--runs results/runs --report-set released --out results/released",
    "reproduce": "--runs results/runs --out results",
    "reproduce-speech-whole": "--runs results/speech_whole/runs --out outputs/speech_whole",
}


MAKE_VARIABLES = ("OUT", "RUNS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")


def _env() -> dict[str, str]:
    """The environment without the Makefile's root variables (a user's shell may set them) and
    without an enclosing make's flags (`make test` runs these tests)."""
    return {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}


def _dry_run(target: str, *variables: str, cwd: Path = REPO_ROOT) -> list[str]:
    """The commands `make TARGET` would run (prerequisites install and data left out)."""
    command = ["make", "--no-print-directory", "-n", "-o", "install", "-o", "data", target]
    command += variables
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=_env(), check=True)
    return [line for line in done.stdout.splitlines() if line.strip() and "make" not in line[:5]]


def _help_lines() -> list[str]:
    command = ["make", "--no-print-directory", "help"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=_env())
    return done.stdout.splitlines()


def _help() -> dict[str, str]:
    pairs = (re.match(r"\s+(\S+)\s+(.*)", line) for line in _help_lines())
    return {m.group(1): m.group(2) for m in pairs if m}


@pytest.mark.parametrize("target", USER_TARGETS)
def test_user_targets_write_under_outputs_only(target: str) -> None:
    commands = [c for c in _dry_run(target) if "scripts/" in c or "tensorboard " in c]
    assert commands, f"make -n {target} runs no script"
    for command in commands:
        assert "results" not in command, f"make {target} touches results/: {command}"
        assert re.search(r"(^|[ =])outputs(/|\s|$)", command), f"{target}: {command}"


@pytest.mark.parametrize(
    ("target", "variable", "expected"),
    [
        ("reproduce", "RUNS=outputs/runs", "--runs outputs/runs --out outputs "),
        ("reports", "RUNS=outputs/runs", "--runs outputs/runs --report-set full --out outputs "),
        (
            "reports",
            "RUNS=outputs/runs",
            "--runs outputs/runs --report-set released --out outputs/released ",
        ),
        (
            "reproduce-speech-whole",
            "RUNS=outputs/runs",
            "--runs outputs/speech_whole/runs --out outputs/speech_whole ",
        ),
        ("samples", "RUNS=outputs/mine", "--runs outputs/mine --out outputs/samples"),
        ("tensorboard", "RUNS=outputs/quick/runs", "--logdir outputs/quick/runs"),
    ],
)
def test_runs_of_your_own_keep_their_reports_out_of_results(
    target: str, variable: str, expected: str
) -> None:
    commands = _dry_run(target, variable)
    assert any(expected in command + " " for command in commands), commands
    assert not any("results" in command for command in commands if "scripts/" in command)


@pytest.mark.parametrize("target", sorted(PUBLISH))
def test_maintainer_targets_write_results_and_say_so(target: str) -> None:
    assert any(PUBLISH[target] in command for command in _dry_run(target))
    assert "results/" in _help()[target]  # the help line names what it rewrites


def test_every_target_that_writes_results_says_so_in_help() -> None:
    lines = _help()
    assert "results/" in _help_lines()[0]  # the first line states the rule
    for target, description in lines.items():
        if target in ("help", "clean", "lint", "format", "lock", "install"):
            continue
        if any("results" in command for command in _dry_run(target)):
            assert "results/" in description, f"make {target} writes results/: {description}"


def _fresh_clone(tmp_path: Path) -> Path:
    """The tracked files of this checkout as a new repository: what a clone of the current
    tree holds (modified files included, so the test checks the code under test)."""
    clone = tmp_path / "clone"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = REPO_ROOT / name
        if source.is_file():  # a file deleted in the working tree is not part of it
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "clone"]):
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
        subprocess.run(git, cwd=clone, check=True, capture_output=True)
    return clone


def _git_status(clone: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout


def _make(clone: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["make", "--no-print-directory", "-o", "install", "-o", "data", *args]
    command.append(f"PY={sys.executable}")
    env = dict(_env(), CI="1", GRU_REPRO_KERNELS="python")  # roots, not loops, are tested
    return subprocess.run(command, cwd=clone, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_fresh_clone_reproduce_quick_trains_into_outputs_and_git_stays_clean(
    tmp_path: Path,
) -> None:
    clone = _fresh_clone(tmp_path)
    assert _git_status(clone) == ""
    # The quick protocol's JSB experiment, shrunk: the synthetic set, one epoch per run, the
    # runs one after the other in one process (Hydra's basic launcher: no worker start-up).
    shrink = (
        "--only music/jsb --launcher basic --override data=synthetic "
        "--override trainer.max_epochs=1"
    )
    done = _make(clone, "reproduce-quick", f"REPRODUCE_FLAGS={shrink}")
    assert done.returncode == 0, done.stdout + done.stderr
    first = next(line for line in done.stdout.splitlines() if line.startswith("["))
    assert "runs in outputs/quick/runs, reports in outputs/quick" in first
    assert "left alone" in first

    runs = sorted((clone / "outputs/quick/runs/music/jsb").glob("*/*/lr=*/seed=*"))
    assert len(runs) == 3 * 3 + 3  # 3 units x 3 candidates, then seed 2 of each selected rate
    for run in runs:  # really trained: a final status and a checkpoint to sample from
        assert '"status": "completed"' in (run / "metrics.json").read_text()
        assert (run / "checkpoints" / "best.pt").is_file()
    assert "| JSB Chorales | GRU |" in (clone / "outputs/quick/table2.md").read_text()
    assert _git_status(clone) == ""

    # make samples then works on those runs by default, into outputs/samples
    done = _make(clone, "samples")
    assert done.returncode == 0, done.stdout + done.stderr
    index = (clone / "outputs/samples/README.md").read_text()
    assert "outputs/quick/runs/music/jsb/gru" in index
    assert _git_status(clone) == ""


def test_publishing_the_quick_protocol_rewrites_only_its_provenance(tmp_path: Path) -> None:
    """The maintainer's form (make publish-quick runs scripts/reproduce.py on the committed
    roots) continues the committed quick runs: all finished, so nothing trains; it says so in
    its first line, keeps the tables byte for byte and rewrites only the provenance."""
    clone = _fresh_clone(tmp_path)
    stand_in = tmp_path / "no_training.py"
    stand_in.write_text("raise SystemExit('a finished sweep must not train')\n")
    command = [
        sys.executable, "scripts/reproduce.py", "--protocol", "quick", "--skip-data",
        "--runs", "results/quick/runs", "--out", "results/quick",
        "--train-command", f"{sys.executable} {stand_in}",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=clone, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert "results/quick/runs" in first and "COMMITTED" in first
    changed = {line[3:] for line in _git_status(clone).splitlines()}
    assert changed == {
        "results/quick/README.md",
        "results/quick/runs/protocols/quick.reproduce.json",
    }
    readme = (clone / "results/quick/README.md").read_text()
    commits = {
        json.loads(path.read_text())["git_commit"]
        for path in (clone / "results/quick/runs").rglob("metrics.json")
    }
    for commit in commits:  # the runs' own commits, each with its date
        assert re.search(rf"`{re.escape(commit)}` \| \d{{4}}-\d\d-\d\d ", readme), commit
