"""The committed run summaries are the runs the current configs describe: every planned
folder in every committed protocol file is the folder the entry point plans today, and every
committed metrics.json carries the identity its folder names. A config change that alters
what a committed run computes fails here, instead of making `make reproduce` retrain it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gru_repro.config.identity import identity_hash
from gru_repro.reports.protocol import Protocol, protocol_names, run_key
from gru_repro.train import plan_runs

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS_ROOTS = [REPO_ROOT / "results" / "runs", REPO_ROOT / "results" / "quick" / "runs"]
PROTOCOLS = [(root, name) for root in RUNS_ROOTS for name in protocol_names(root)]


def test_the_committed_runs_roots_hold_protocols() -> None:
    assert {name for _, name in PROTOCOLS} == {"full", "full-released-optim", "quick"}


@pytest.mark.parametrize(("root", "name"), PROTOCOLS, ids=[n for _, n in PROTOCOLS])
def test_committed_folders_are_what_the_configs_plan(root: Path, name: str) -> None:
    protocol = Protocol.load(root, name)
    for plan in protocol.experiments:
        planned = plan_runs(plan)
        for (unit, lr, seed), (folder, identity) in planned.items():
            assert plan.folders[run_key(unit, lr, seed)] == folder, (plan.experiment, folder)
            metrics_file = root / folder / "metrics.json"
            if metrics_file.is_file():  # a run of the grid that was trained
                metrics = json.loads(metrics_file.read_text())
                assert metrics["identity"] == identity, folder
                assert metrics["identity_hash"] == identity_hash(identity) in folder
