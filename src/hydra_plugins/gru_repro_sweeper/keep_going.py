"""``hydra/sweeper=keep_going``: Hydra's basic sweeper, except that one bad job never ends the
sweep.

Hydra's basic sweeper composes every job of a batch before launching any (a type error in one
job's override stops them all) and raises the first failed job's error after its batch. Here a
job whose config does not compose or check (``gru_repro.config.store.to_objects``) is recorded
and left out, the other jobs run under any launcher, every job's outcome is written to
``<sweep dir>/sweep-summary-<time>-<pid>.json``, and the sweep then ends with
``SweepFailed`` naming the
failed jobs (``gru_repro.train`` prints it and exits non-zero).

Under ``trainer.population=auto`` the jobs that differ only in ``optim.lr`` become one job,
the first of them with ``trainer.population_lrs=[...]`` (gru_repro.train_population trains
them as one population); the summary still lists every learning rate's own job and folder.
"""

# no `from __future__ import annotations`: Hydra imports plugins outside sys.modules, where
# dataclasses cannot resolve string annotations
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf

from gru_repro.atomic import atomic_write_text
from gru_repro.config.errors import CONFIG_ERRORS, SweepFailed, one_line

log = logging.getLogger(__name__)


@dataclass
class KeepGoingSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.gru_repro_sweeper.keep_going.KeepGoingSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="keep_going", node=KeepGoingSweeperConf)


class KeepGoingSweeper(BasicSweeper):
    def _check_job(self, overrides: list) -> tuple[str | None, Any]:
        """(None, its config) when the job's config composes and passes the schema's checks,
        else (why not, None)."""
        from gru_repro.config.store import to_objects

        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            to_objects(cfg)
        except CONFIG_ERRORS as exc:
            return one_line(exc), None
        return None, cfg

    @staticmethod
    def _populations(jobs: list, configs: list) -> tuple[list, dict]:
        """The jobs to launch, the lr jobs of one population merged into its first job; and
        {index of a merged job: the original jobs it stands for}."""
        groups: dict[tuple, list[int]] = {}
        for index, (job, cfg) in enumerate(zip(jobs, configs, strict=True)):
            trainer = cfg.trainer
            if trainer.population == "auto" and not trainer.population_lrs:
                key = tuple(o for o in job if not o.startswith("optim.lr="))
            else:
                key = ("single job", index)
            groups.setdefault(key, []).append(index)
        launched, merged = [], {}
        chunks = []
        for members in groups.values():  # trainer.population_size: at most that many each
            size = int(configs[members[0]].trainer.get("population_size", 0) or 0)
            step = size if size > 0 else len(members)
            chunks += [members[i : i + step] for i in range(0, len(members), step)]
        for members in chunks:
            lead = list(jobs[members[0]])
            if len(members) > 1:
                lrs = ",".join(repr(float(configs[m].optim.lr)) for m in members)
                merged[len(launched)] = [list(jobs[m]) for m in members]
                lead.append(f"trainer.population_lrs=[{lrs}]")
            launched.append(lead)
        return launched, merged

    def sweep(self, arguments: list) -> Any:
        # the sweep folder's name reads ${hydra:runtime.choices...} (configs/train.yaml)
        HydraConfig.instance().set_config(self.config)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        outcomes: list[dict] = []
        returns, job_index = [], 0
        while not self.is_done():
            good, configs = [], []
            for job in self.get_job_batch():
                error, cfg = self._check_job(list(job))
                if error is None:
                    good.append(job)
                    configs.append(cfg)
                else:
                    log.error("config error in job %s: %s", " ".join(job), error)
                    outcomes.append(
                        {"overrides": list(job), "status": "config_error", "error": error}
                    )
            good, merged = self._populations(good, configs)
            results = self.launcher.launch(good, initial_job_idx=job_index) if good else []
            job_index += len(good)
            for index, (job, ret) in enumerate(zip(good, results, strict=True)):
                if index in merged:
                    outcomes.extend(self._member_outcomes(merged[index], ret))
                else:
                    outcomes.append(self._outcome(list(job), ret))
            returns.append(results)

        failed = [o for o in outcomes if o["status"] in ("config_error", "crashed")]
        text = json.dumps({"jobs": outcomes, "failed": len(failed)}, indent=2) + "\n"
        # one file per sweep: sweeps into one folder (e.g. a protocol's seed reruns) run at once
        summary = sweep_dir / f"sweep-summary-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
        atomic_write_text(summary, text)
        if failed:
            raise SweepFailed(summary, failed, len(outcomes))
        return returns

    @staticmethod
    def _outcome(overrides: list[str], ret) -> dict:
        folder = OmegaConf.select(ret.hydra_cfg or {}, "hydra.runtime.output_dir", default="")
        outcome = {"overrides": overrides, "folder": str(folder)}
        if ret.status == JobStatus.FAILED:
            error = ret._return_value  # the exception the job raised
            if isinstance(error, CONFIG_ERRORS):
                return {**outcome, "status": "config_error", "error": one_line(error)}
            return {**outcome, "status": "crashed", "error": f"{type(error).__name__}: {error}"}
        value = ret.return_value if isinstance(ret.return_value, dict) else {}
        return {**outcome, "status": value.get("status", "unknown")}

    @classmethod
    def _member_outcomes(cls, jobs: list[list[str]], ret) -> list[dict]:
        """One outcome per learning rate of a population job (the job's own on a failure)."""
        outcome = cls._outcome(jobs[0], ret)
        if outcome["status"] != "population":  # failed (return_value would raise) or odd
            return [{**outcome, "overrides": job} for job in jobs]
        value = ret.return_value
        return [
            {"overrides": job, "folder": member["folder"], "status": member["status"]}
            for job, member in zip(jobs, value["members"], strict=True)
        ]
