"""The committed run summaries are the runs the current configs describe: every planned
folder in every committed protocol file is the folder the entry point plans today, and every
committed metrics.json carries the identity its folder names. A config change that alters
what a committed run computes fails here, instead of making `make reproduce` retrain it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gru_repro.config.identity import identity_diff, identity_hash, run_identity
from gru_repro.config.store import compose_run, identity_of, package_configs
from gru_repro.reports.protocol import (
    Protocol,
    full_protocol,
    protocol_names,
    quick_protocol,
    run_key,
)
from gru_repro.train import plan_runs

pytestmark = pytest.mark.artifacts

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNS_ROOTS = [
    REPO_ROOT / "results" / "runs",
    REPO_ROOT / "results" / "quick" / "runs",
    REPO_ROOT / "results" / "speech_whole" / "runs",  # the speech search on all of FSDD
]
PROTOCOLS = [(root, name) for root in RUNS_ROOTS for name in protocol_names(root)]
IDS = [f"{root.relative_to(REPO_ROOT)}:{name}" for root, name in PROTOCOLS]


def test_the_committed_runs_roots_hold_protocols() -> None:
    assert {name for _, name in PROTOCOLS} == {
        "full",
        "full-released-optim",
        "released-exact",
        "quick",
    }
    assert "results/speech_whole/runs:full" in IDS


@pytest.mark.slow
@pytest.mark.parametrize(("root", "name"), PROTOCOLS, ids=IDS)
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


# committed protocol -> how scripts/reproduce.py builds it today (from configs/experiment/)
BUILDERS = {
    "results/runs:full": full_protocol,
    "results/runs:full-released-optim": lambda: full_protocol(optim="released"),
    "results/runs:released-exact": lambda: full_protocol(optim="released-exact"),
    "results/quick/runs:quick": quick_protocol,
    "results/speech_whole/runs:full": lambda: full_protocol(speech="whole"),
}


@pytest.mark.slow
@pytest.mark.parametrize(("root", "name"), PROTOCOLS, ids=IDS)
def test_the_experiment_files_plan_the_committed_runs(root: Path, name: str) -> None:
    """The committed protocol files name base experiments and Hydra overrides (written before
    the variants had experiment files); the experiment files compose to the same runs, in the
    same folders, with the same identities, and a rerun keeps the committed record."""
    committed = Protocol.load(root, name)
    fresh = BUILDERS[f"{root.relative_to(REPO_ROOT)}:{name}"]().with_folders(
        lambda p: {k: r[0] for k, r in plan_runs(p).items()}
    )
    assert committed.plans_the_same_runs(fresh)
    for old, new in zip(committed.experiments, fresh.experiments, strict=True):
        assert plan_runs(old) == plan_runs(new), (old.experiment, new.config)


ABLATIONS = sorted(p for p in (REPO_ROOT / "results" / "ablations").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", ABLATIONS, ids=[p.name for p in ABLATIONS])
def test_each_ablation_file_composes_to_its_committed_run(folder: Path) -> None:
    """configs/experiment/ablation/<name>.yaml is the run results/ablations/<name>/ holds: the
    identity of the config Hydra recorded there (.hydra/config.yaml) and the settings its
    metrics.json recorded."""
    recorded = run_identity(yaml.safe_load((folder / ".hydra" / "config.yaml").read_text()))
    metrics = json.loads((folder / "metrics.json").read_text())
    with package_configs():
        cfg = compose_run([f"experiment=ablation/{folder.name}"])
    identity = identity_of(cfg)
    assert identity == recorded, identity_diff(recorded, identity)
    assert (cfg.model.unit, cfg.optim.lr, cfg.seed) == (
        metrics["unit"],
        metrics["lr"],
        metrics["seed"],
    )
    assert (cfg.trainer.batch_size, cfg.trainer.max_epochs, cfg.optim.name) == (
        metrics["batch_size"],
        metrics["max_epochs"],
        metrics["optim"],
    )
    assert not cfg.hydra.sweeper.params  # one run, also under -m
    assert cfg.hydra.sweep.dir.endswith(f"ablations/{folder.name}")
