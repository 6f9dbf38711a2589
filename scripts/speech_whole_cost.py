"""What the speech search on all of FSDD would cost on this machine (a measurement, not a test).

    python scripts/speech_whole_cost.py                              # prints the table
    python scripts/speech_whole_cost.py --out results/speech_whole_cost.md

For each speech setting of the full protocol's `--speech whole` (SPEECH_DATA["whole"]:
experiment=speech/a and speech/b on all of FSDD) and each unit, trains one epoch of a single run
(one thread, the protocol's batch size, a mid-grid learning rate: the rate does not change the
cost of an epoch) into a temporary folder and reads the epoch's wall time from its curves.csv
(epoch 1's wall_seconds minus epoch 0's: the training updates plus the validation pass). The
search is then costed as the protocol plans it: 10 candidates and 2 more seeds per unit, each
run at most the epoch budget (early stopping can end a run sooner, so this is an upper bound).
Populations do not make it cheaper at the speech sizes (results/bench.md), so single runs are
the basis. Why a script of its own: the projection needs the protocol's plan (runs, budget) next
to a real epoch of each unit on the whole data, which no benchmark in the project measures.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from gru_repro.atomic import atomic_write_text
from gru_repro.config.store import compose_run, package_configs, to_objects
from gru_repro.data import load_configured_splits
from gru_repro.provenance import machine_description
from gru_repro.reports.protocol import SPEECH_DATA, ExperimentPlan, full_protocol
from gru_repro.training.loop import Trainer


@dataclasses.dataclass(frozen=True)
class EpochCost:
    experiment: str
    unit: str
    train_sequences: int
    batch_size: int
    epoch_seconds: float  # one epoch's updates plus its validation pass, one thread
    max_epochs: int  # the protocol's epoch budget for this experiment
    runs: int  # candidates + seed reruns of this unit

    @property
    def core_hours(self) -> float:
        """Upper bound: every run trains its whole epoch budget."""
        return self.epoch_seconds * self.max_epochs * self.runs / 3600


def speech_whole_plans() -> list[ExperimentPlan]:
    """The speech experiments of the full protocol on all of FSDD (`--speech whole`)."""
    return list(full_protocol(speech="whole").only(list(SPEECH_DATA["whole"])).experiments)


def planned_runs(plan: ExperimentPlan) -> int:
    """One unit's runs: its search candidates and the selected rate's other seeds."""
    return len(plan.lrs) + len(plan.seeds) - 1


def measure(plan: ExperimentPlan, unit: str) -> EpochCost:
    """Train one epoch of `plan`'s `unit` on all its data and read the epoch's wall time."""
    experiment, lrs = plan.config, plan.lrs
    one_epoch = [
        *plan.command, f"model={unit}", f"optim.lr={lrs[len(lrs) // 2]}",
        "trainer.max_epochs=1", "trainer.patience=0", "trainer.progress=false",
    ]  # fmt: skip
    with package_configs():
        budget = to_objects(compose_run(list(plan.command))).trainer.max_epochs
        config = to_objects(compose_run(one_epoch))
    splits = load_configured_splits(config.data)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        Trainer(
            splits,
            run_dir=run_dir,
            seed=config.seed,
            model_options=dataclasses.asdict(config.model),
            optim_options=dataclasses.asdict(config.optim),
            settings=config.trainer,
            run_info={"dataset": config.data.name},
        ).fit()
        with open(run_dir / "curves.csv", newline="") as handle:
            wall = {int(row["epoch"]): float(row["wall_seconds"]) for row in csv.DictReader(handle)}
    return EpochCost(
        experiment=experiment,
        unit=unit,
        train_sequences=len(splits.train),
        batch_size=config.trainer.batch_size,
        epoch_seconds=wall[1] - wall[0],
        max_epochs=budget,
        runs=planned_runs(plan),
    )


def markdown(costs: list[EpochCost], machine: str, cores: int) -> str:
    total = sum(c.core_hours for c in costs)
    lines = [
        "# Speech on all of FSDD: what the search would cost",
        "",
        "<!-- written by scripts/speech_whole_cost.py; do not edit by hand -->",
        "",
        f"Measured on {machine}, one thread per run, with nothing else running. Per unit: one "
        "epoch of a single run on all of the setting's training data (its updates and the "
        "validation pass, from curves.csv), and the protocol's plan for it (10 learning-rate "
        "candidates and the selected rate's other seeds, each at most the epoch budget). Early "
        "stopping can end runs sooner, so the hours are an upper bound; populations do not "
        "make the speech sizes cheaper (results/bench.md).",
        "",
        "| setting | unit | training sequences | batch | s / epoch | epoch budget | runs | "
        "core-hours at most |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in costs:
        lines.append(
            f"| `{c.experiment}` | {c.unit} | {c.train_sequences} | {c.batch_size} | "
            f"{c.epoch_seconds:.0f} | {c.max_epochs} | {c.runs} | {c.core_hours:.0f} |"
        )
    lines += [
        "",
        f"In all: at most {total:.0f} core-hours, {total / cores / 24:.1f} days on this "
        f"machine's {cores} cores with one run per core.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the table here (default: print it)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    costs = []
    for plan in speech_whole_plans():
        for unit in plan.units:
            started = time.perf_counter()
            costs.append(measure(plan, unit))
            print(f"{plan.experiment} {unit}: {costs[-1].epoch_seconds:.0f} s / epoch "
                  f"(measured in {time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    text = markdown(costs, machine_description(), len(os.sched_getaffinity(0)))
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
