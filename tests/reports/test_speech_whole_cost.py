"""scripts/speech_whole_cost.py's projection: an epoch's measured seconds times the runs and
epochs the protocol plans, summed into core-hours and days on the machine's cores."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location(
        "speech_whole_cost", REPO_ROOT / "scripts" / "speech_whole_cost.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_core_hours_are_epoch_seconds_times_budget_times_runs() -> None:
    script = _script()
    cost = script.EpochCost("speech/a", "gru", 6001, 8, 18.0, 200, 12)
    assert cost.core_hours == 18.0 * 200 * 12 / 3600  # 12 h: every run at its whole budget


def test_the_table_sums_the_units_into_days_on_the_machine_cores() -> None:
    script = _script()
    costs = [
        script.EpochCost("speech/a", "tanh", 6001, 8, 36.0, 200, 12),  # 24 core-hours
        script.EpochCost("speech/b", "lstm", 646, 8, 18.0, 200, 12),  # 12 core-hours
    ]
    text = script.markdown(costs, "a test machine", cores=2)
    assert "| `speech/a` | tanh | 6001 | 8 | 36 | 200 | 12 | 24 |" in text
    assert "| `speech/b` | lstm | 646 | 8 | 18 | 200 | 12 | 12 |" in text
    assert "at most 36 core-hours, 0.8 days on this machine's 2 cores" in text  # 36 / 2 / 24
    assert "Measured on a test machine" in text


def test_the_plan_is_the_protocols_speech_on_all_of_fsdd() -> None:
    """Both speech settings on the whole data, each unit 10 candidates and 2 more seeds."""
    script = _script()
    plans = script.speech_whole_plans()
    assert [p.experiment for p in plans] == ["speech/a", "speech/b"]
    assert all(p.config == p.experiment for p in plans)  # not the *_subset files
    assert [script.planned_runs(p) for p in plans] == [12, 12]
