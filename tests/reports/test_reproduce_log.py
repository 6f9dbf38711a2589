"""The wall-clock record of scripts/reproduce.py is written as an invocation goes, not at its
end: a sweep killed with SIGKILL keeps the time it ran up to its last beat."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gru_repro.reports.protocol import reproduce_log_path
from gru_repro.reports.reproduce_log import ReproduceLog


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(root: Path) -> dict:
    return json.loads(reproduce_log_path(root, "full").read_text())


def test_start_counts_the_invocation_and_beats_add_the_elapsed_seconds(tmp_path: Path) -> None:
    clock = FakeClock()
    log = ReproduceLog(tmp_path, "full", "scripts/reproduce.py --protocol full", clock=clock)
    log.start()
    first = _record(tmp_path)
    assert first["invocations"] == 1 and first["total_seconds"] == 0.0
    assert first["command"] == "scripts/reproduce.py --protocol full"
    assert first["started"] == first["last_started"]
    clock.now += 30.0
    log.beat()
    clock.now += 12.5
    log.beat()
    assert _record(tmp_path)["total_seconds"] == pytest.approx(42.5)


def test_two_invocations_on_one_root_add_up(tmp_path: Path) -> None:
    """Two experiments trained side by side: each beat adds its own seconds to the file."""
    clock = FakeClock()
    a = ReproduceLog(tmp_path, "full", "a", clock=clock)
    b = ReproduceLog(tmp_path, "full", "b", clock=clock)
    a.start()
    b.start()
    clock.now += 10.0
    a.beat()
    b.beat()
    clock.now += 5.0
    a.beat()
    record = _record(tmp_path)
    assert record["invocations"] == 2
    assert record["total_seconds"] == pytest.approx(25.0)  # a: 15 s, b: 10 s


def test_a_record_of_earlier_invocations_is_continued(tmp_path: Path) -> None:
    path = reproduce_log_path(tmp_path, "full")
    path.parent.mkdir(parents=True)
    earlier = {"total_seconds": 3600.0, "started": "2026-11-21 15:44 UTC", "invocations": 8}
    path.write_text(json.dumps(earlier))
    clock = FakeClock()
    log = ReproduceLog(tmp_path, "full", "again", clock=clock)
    log.start()
    clock.now += 60.0
    log.beat()
    record = _record(tmp_path)
    assert record["started"] == "2026-11-21 15:44 UTC"  # the first invocation's start stays
    assert record["invocations"] == 9
    assert record["total_seconds"] == pytest.approx(3660.0)


def test_beating_writes_the_time_while_the_invocation_runs(tmp_path: Path) -> None:
    with ReproduceLog(tmp_path, "full", "sweep").beating(every=0.02):
        deadline = time.monotonic() + 5.0
        while _record(tmp_path)["total_seconds"] == 0.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        during = _record(tmp_path)["total_seconds"]
    assert during > 0.0  # a beat landed before the block ended
    assert _record(tmp_path)["total_seconds"] >= during


def test_beat_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        ReproduceLog(tmp_path, "full", "x").beat()
