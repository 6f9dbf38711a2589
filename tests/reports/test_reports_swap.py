"""A report rebuild killed at any moment leaves the complete old set or the complete new one."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_runs import fake_valid_nll, write_fake_run

from gru_repro.reports.build import build_reports
from gru_repro.reports.protocol import ExperimentPlan, Protocol
from gru_repro.reports.publish import SWAP_MARKER, finish_interrupted_swap, staged_report_set

REPO_ROOT = Path(__file__).resolve().parents[2]
SET = ("README.md", "figure3.png", "figure3_more.png", "lr_search.md", "table2.csv", "table2.md")
OLD = {name: f"old {name}\n".encode() for name in SET}
BUILD_TIME_LINE = "- reports built "  # results/README.md's only line that names the clock
NEW = {name: f"new {name}, longer than the old one\n".encode() for name in SET}

# Publishes NEW into argv[1], SIGKILLing itself just before or after its n-th os.replace or
# os.unlink: every point at which the swap changes what is on disk.
KILL_AT_CALL = """
import os, signal, sys
from pathlib import Path
from gru_repro.reports.publish import staged_report_set
out, kill_at, when, new = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], eval(sys.argv[4])
calls = 0
def counted(real):
    def call(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            return real(*args, **kwargs)
        finally:  # also after a call that raised (unlink(missing_ok=True) of a renamed file)
            if calls == kill_at and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
    return call
os.replace, os.unlink = counted(os.replace), counted(os.unlink)
with staged_report_set(out) as staging:
    for name, data in new.items():
        (staging / name).write_bytes(data)
"""


def _contents(out: Path, names=SET) -> dict[str, bytes | None]:
    return {n: (out / n).read_bytes() if (out / n).is_file() else None for n in names}


def _state(out: Path, old: dict, new: dict) -> str:
    current = _contents(out, old)
    return "old" if current == old else "new" if current == new else "mixed"


def _hidden(out: Path) -> list[str]:
    """Staging folders, the marker, temp files: nothing may stay after a finished build."""
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def _old_folder(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "keep.txt").write_text("not a report")
    for name, data in OLD.items():
        (out / name).write_bytes(data)


@pytest.mark.subprocess
def test_swap_killed_at_every_step_is_old_or_new_and_finishes_new(tmp_path: Path) -> None:
    out, seen = tmp_path / "results", set()
    for kill_at, when in itertools.product(range(1, 100), ("before", "after")):
        _old_folder(out)
        args = [str(out), str(kill_at), when, repr(NEW)]
        child = subprocess.run([sys.executable, "-c", KILL_AT_CALL, *args])
        if child.returncode == 0:  # past the last call: nothing left to interrupt
            break
        assert child.returncode == -signal.SIGKILL
        state = _state(out, OLD, NEW)
        if (out / SWAP_MARKER).exists():
            seen.add(f"{state} with marker")
            assert finish_interrupted_swap(out)  # what the next build or a reader does
            assert _state(out, OLD, NEW) == "new" and _hidden(out) == []
        else:
            assert state in ("old", "new"), (kill_at, when)
            seen.add(state)
        with staged_report_set(out) as staging:  # the rerun: all new, no debris
            for name, data in NEW.items():
                (staging / name).write_bytes(data)
        assert _state(out, OLD, NEW) == "new" and _hidden(out) == []
        assert (out / "runs" / "keep.txt").read_text() == "not a report"
    # the kills landed before, inside and after the rename phase
    assert {"old", "mixed with marker", "new"} <= seen, seen


def test_failed_build_leaves_the_old_set_and_no_staging(tmp_path: Path) -> None:
    out = tmp_path / "results"
    _old_folder(out)
    with pytest.raises(RuntimeError, match="figure failed"):
        with staged_report_set(out) as staging:
            (staging / "table2.md").write_text("new")
            raise RuntimeError("figure failed")
    assert _state(out, OLD, NEW) == "old" and _hidden(out) == []


@pytest.mark.subprocess
def test_staging_folders_of_dead_builds_are_removed_live_ones_kept(tmp_path: Path) -> None:
    out = tmp_path / "results"
    _old_folder(out)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = out / f".reports-staging.{child.pid}.abcd1234"
    live = out / f".reports-staging.{os.getpid()}.abcd1234"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "table2.md").write_text("half built")
    with staged_report_set(out) as staging:
        (staging / "table2.md").write_bytes(NEW["table2.md"])
    assert not dead.exists() and (live / "table2.md").exists()
    assert (out / "table2.md").read_bytes() == NEW["table2.md"]
    assert (out / "README.md").read_bytes() == OLD["README.md"]  # not in this set: kept


def test_a_marker_not_written_by_a_build_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "results"
    _old_folder(out)
    (out / SWAP_MARKER).write_text(json.dumps({"staging": "../elsewhere", "files": {}}))
    with pytest.raises(ValueError, match="not a report swap record"):
        finish_interrupted_swap(out)
    assert _state(out, OLD, NEW) == "old"


# ------------------------------------------------------------ the real build, killed at random
def _protocol() -> Protocol:
    """One experiment in each figure, so that every report file depends on the runs."""
    plans = tuple(
        ExperimentPlan(e, lrs=(1e-4, 1e-3), seeds=(1, 2)) for e in ("music/jsb", "music/nottingham")
    )
    return Protocol("test", plans)


def _fill(runs: Path, protocol: Protocol, offset: float, epochs: int) -> None:
    for plan in protocol.experiments:
        for unit in plan.units:
            for lr in plan.lrs:
                valid = fake_valid_nll(unit, lr, 1e-3) + offset
                write_fake_run(runs, plan.experiment, unit, lr, 1, valid_nll=valid, epochs=epochs)
            valid = 3.0 + offset
            write_fake_run(runs, plan.experiment, unit, 1e-3, 2, valid_nll=valid, epochs=epochs)


def _report_bytes(out: Path) -> dict[str, bytes]:
    """The set's files; README without its build-time line (minutes may tick between builds)."""
    contents = _contents(out)
    readme = contents["README.md"].decode().splitlines(keepends=True)
    assert sum(x.startswith(BUILD_TIME_LINE) for x in readme) == 1, "the README format moved"
    contents["README.md"] = "".join(x for x in readme if not x.startswith(BUILD_TIME_LINE)).encode()
    return contents


@pytest.mark.subprocess
def test_report_build_killed_at_random_moments_leaves_old_or_new_set(tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "results"
    protocol = _protocol()
    _fill(runs, protocol, offset=0.0, epochs=4)
    protocol.save(runs)
    cli = [sys.executable, str(REPO_ROOT / "scripts" / "make_reports.py"), "--runs", str(runs)]
    build_reports(runs, tmp_path / "old", protocol)
    _fill(runs, protocol, offset=1.0, epochs=5)  # the runs change, and every report file
    started = time.monotonic()
    subprocess.run([*cli, "--out", str(tmp_path / "new")], check=True, capture_output=True)
    duration = time.monotonic() - started
    old, new = _report_bytes(tmp_path / "old"), _report_bytes(tmp_path / "new")
    assert all(old[name] != new[name] for name in SET)

    rng = random.Random(17)
    # a random moment in each third of the build's second half (the first is Python's imports)
    for delay in (rng.uniform(0.5 + k / 6, 0.5 + (k + 1) / 6) * duration for k in range(3)):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(tmp_path / "old", out)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        build = subprocess.Popen([*cli, "--out", str(out)], **quiet)
        time.sleep(delay)  # any moment: the assertions hold whenever the kill lands
        build.send_signal(signal.SIGKILL)
        build.wait()
        finish_interrupted_swap(out)
        assert _report_bytes(out) in (old, new), f"mixed set after a kill at {delay:.2f} s"
    build_reports(runs, out, protocol)  # the rerun: the complete new set, no debris left
    assert _report_bytes(out) == new and _hidden(out) == []
