"""How a user asks for populations: the keep_going sweeper merges the learning-rate jobs of
one run under trainer.population=auto (and nothing else), the entry point refuses a population
its own lr is not in, and scripts/reproduce.py searches with populations unless told not to."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gru_repro.config import ConfigError
from gru_repro.config.identity import is_run_only
from gru_repro.config.store import compose_run, identity_of, package_configs
from gru_repro.reports.protocol import ExperimentPlan
from gru_repro.train import run
from hydra_plugins.gru_repro_sweeper.keep_going import KeepGoingSweeper

REPO_ROOT = Path(__file__).resolve().parents[2]


def _config(lr: float, population: str = "auto", lrs=(), size: int = 0):
    trainer = {"population": population, "population_lrs": list(lrs), "population_size": size}
    return OmegaConf.create({"optim": {"lr": lr}, "trainer": trainer})


def test_the_sweeper_merges_the_lr_jobs_of_each_run_into_one_population_job() -> None:
    jobs, configs = [], []
    for unit in ("tanh", "gru"):
        for lr in (0.001, 0.01, 0.1):
            jobs.append([f"model={unit}", f"optim.lr={lr}", "seed=1"])
            configs.append(_config(lr))
    jobs.append(["model=lstm", "optim.lr=0.001", "seed=1"])  # alone: stays a single run
    configs.append(_config(0.001))
    launched, merged = KeepGoingSweeper._populations(jobs, configs)
    assert launched == [
        ["model=tanh", "optim.lr=0.001", "seed=1", "trainer.population_lrs=[0.001,0.01,0.1]"],
        ["model=gru", "optim.lr=0.001", "seed=1", "trainer.population_lrs=[0.001,0.01,0.1]"],
        ["model=lstm", "optim.lr=0.001", "seed=1"],
    ]
    assert merged == {0: jobs[0:3], 1: jobs[3:6]}


def test_population_size_splits_a_runs_lr_jobs_into_populations_of_at_most_that_many() -> None:
    lrs = (0.001, 0.002, 0.003, 0.004, 0.005)
    jobs = [["model=gru", f"optim.lr={lr}"] for lr in lrs]
    launched, merged = KeepGoingSweeper._populations(jobs, [_config(lr, size=2) for lr in lrs])
    assert launched == [
        ["model=gru", "optim.lr=0.001", "trainer.population_lrs=[0.001,0.002]"],
        ["model=gru", "optim.lr=0.003", "trainer.population_lrs=[0.003,0.004]"],
        ["model=gru", "optim.lr=0.005"],  # the rest, alone: a single run
    ]
    assert merged == {0: jobs[0:2], 1: jobs[2:4]}
    assert is_run_only("trainer.population_size")


def test_without_population_auto_every_job_is_its_own() -> None:
    jobs = [["optim.lr=0.001"], ["optim.lr=0.01"]]
    launched, merged = KeepGoingSweeper._populations(
        jobs, [_config(0.001, "off"), _config(0.01, "off")]
    )
    assert launched == jobs and merged == {}


def test_population_keys_are_run_only_so_members_keep_their_single_runs_identity() -> None:
    assert is_run_only("trainer.population") and is_run_only("trainer.population_lrs")
    assert is_run_only("trainer.population_exact")
    GlobalHydra.instance().clear()
    with package_configs():
        single = identity_of(compose_run(["optim.lr=0.01"]))
        member = identity_of(
            compose_run(
                [
                    "optim.lr=0.01",
                    "trainer.population=auto",
                    "trainer.population_lrs=[0.001,0.01]",
                    "trainer.population_exact=true",
                ]
            )
        )
    assert member == single


@pytest.mark.parametrize(
    "lrs, message",
    [("[0.001,0.1]", "is not in trainer.population_lrs"), ("[0.01,0.01]", "repeats")],
)
def test_a_population_without_its_own_lr_or_with_a_repeat_is_a_config_error(
    tmp_path, lrs, message
) -> None:
    GlobalHydra.instance().clear()
    with package_configs():
        cfg = compose_run(
            [f"paths.output_root={tmp_path}", "optim.lr=0.01", f"trainer.population_lrs={lrs}"]
        )
        with pytest.raises(ConfigError, match=message):
            run(cfg, tmp_path / "run")
    assert not any(tmp_path.rglob("metrics.json"))


def _reproduce_module():
    spec = importlib.util.spec_from_file_location(
        "reproduce", REPO_ROOT / "scripts" / "reproduce.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_under_test"] = module
    spec.loader.exec_module(module)
    return module


def test_reproduce_searches_with_populations_unless_no_population() -> None:
    reproduce = _reproduce_module()
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=(1e-3, 1e-2), seeds=(1, 2))
    for argv, expected in (([], True), (["--no-population"], False)):
        args = reproduce.parse_args(argv)
        assert args.population is expected
        search = reproduce.sweep_command(
            args, plan, ["gru"], [1e-3, 1e-2], [1], population=args.population
        )
        assert ("trainer.population=auto" in search) is expected
        seeds = reproduce.sweep_command(args, plan, ["gru"], [1e-3], [2, 3])
        assert "trainer.population=auto" not in seeds  # the seed reruns stay single runs


def test_a_member_folder_in_use_by_another_process_refuses_the_population(tmp_path) -> None:
    from gru_repro.train_population import member_runs
    from gru_repro.training.run_lock import RunFolderLock

    GlobalHydra.instance().clear()
    with package_configs():
        cfg = compose_run(
            [f"paths.output_root={tmp_path}", "optim.lr=0.01", "trainer.max_epochs=1",
             "trainer.population_lrs=[0.01,0.1]"]
        )  # fmt: skip
        lead = Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir
        (_, _), (second, _) = member_runs(cfg, lead, [0.01, 0.1])
        assert second.run_dir.parent.name == "lr=0.1"
        with RunFolderLock(second.run_dir):  # another training process holds it
            with pytest.raises(ConfigError, match="is in use by another process"):
                run(cfg, lead)
        assert (second.run_dir / ".run.lock").is_file()  # the other process's lock stays
        assert not lead.exists()  # the folders this call made are gone
    assert not any(tmp_path.rglob("metrics.json"))


def test_a_member_folder_holding_another_run_refuses_the_population(tmp_path) -> None:
    from gru_repro.train_population import member_runs

    GlobalHydra.instance().clear()
    with package_configs():
        cfg = compose_run(
            [f"paths.output_root={tmp_path}", "optim.lr=0.01", "trainer.population_lrs=[0.01,0.1]"]
        )
        lead = Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir
        (_, _), (second, _) = member_runs(cfg, lead, [0.01, 0.1])
        second.run_dir.mkdir(parents=True)
        other = {**second.identity, "seed": 99}
        (second.run_dir / "metrics.json").write_text(json.dumps({"identity": other}))
        with pytest.raises(ConfigError, match="holds another run .*seed 99 -> 1"):
            run(cfg, lead)
    assert not lead.exists() and not (tmp_path / "checkpoints").exists()


def test_a_crashed_population_job_is_recorded_for_every_learning_rate() -> None:
    from hydra.core.utils import JobReturn, JobStatus

    jobs = [["model=gru", "optim.lr=0.001"], ["model=gru", "optim.lr=0.01"]]
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": "lead"}}})
    crashed = JobReturn(
        status=JobStatus.FAILED, _return_value=RuntimeError("boom"), hydra_cfg=hydra_cfg
    )
    outcomes = KeepGoingSweeper._member_outcomes(jobs, crashed)
    assert [o["overrides"] for o in outcomes] == jobs
    assert {o["status"] for o in outcomes} == {"crashed"} and "boom" in outcomes[1]["error"]
    done = JobReturn(status=JobStatus.COMPLETED, hydra_cfg=hydra_cfg, _return_value={
        "status": "population",
        "members": [{"folder": "a", "status": "completed"}, {"folder": "b", "status": "skipped"}],
    })  # fmt: skip
    outcomes = KeepGoingSweeper._member_outcomes(jobs, done)
    assert [(o["folder"], o["status"]) for o in outcomes] == [("a", "completed"), ("b", "skipped")]
