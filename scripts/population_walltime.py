"""Wall time of one population against its single runs one after another (a measurement, not a
test): the LR candidates of one experiment's unit, a few epochs, on this machine, one thread.

    python scripts/population_walltime.py                        # JSB GRU, the 10 candidates
    python scripts/population_walltime.py --unit lstm --epochs 2 --batch-size 1

Trains the single runs (training/loop.py) and then the population (training/population/) of
the same runs into a temporary folder, prints both wall and CPU times (every run writes its
checkpoints with fsync, so on a shared disk the wall time also measures the disk) and checks
that every member's metrics are its single run's (wall_seconds and run_dir aside): bit for bit
with ``--exact`` (trainer.population_exact), else its NLLs within 1e-4 nats (the default
batched products round differently in float32).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import torch

from gru_repro.config.store import (
    compose_run,
    experiment_sweep,
    identity_of,
    package_configs,
    to_objects,
)
from gru_repro.data import load_configured_splits
from gru_repro.provenance import machine_description
from gru_repro.training.loop import Trainer
from gru_repro.training.population.trainer import Member, PopulationTrainer

VOLATILE = {"wall_seconds", "run_dir"}


def _same(single: dict, member: dict, *, exact: bool) -> bool:
    """Whether a member's final metrics are its single run's: all equal (exact), or the same
    keys and statuses with every NLL within 1e-4 nats."""
    a = {k: v for k, v in single.items() if k not in VOLATILE}
    b = {k: v for k, v in member.items() if k not in VOLATILE}
    if exact or a.keys() != b.keys():
        return a == b

    def close(x, y) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return abs(x - y) <= 1e-4 or (x != x and y != y)
        return x == y

    return all(close(a[k], b[k]) if k.endswith("_nll") or "_nll_" in k else True for k in a) and (
        a["status"] == b["status"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="music/jsb")
    parser.add_argument("--unit", default="gru")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--members", type=int, default=10, help="the first N candidates")
    parser.add_argument("--exact", action="store_true", help="trainer.population_exact=true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)

    lrs = list(experiment_sweep(args.experiment).lrs)[: args.members]
    overrides = [
        f"experiment={args.experiment}", f"model={args.unit}", f"optim.lr={lrs[0]}",
        f"trainer.max_epochs={args.epochs}", f"trainer.batch_size={args.batch_size}",
        "trainer.patience=0", "trainer.progress=false",
        f"trainer.population_exact={str(args.exact).lower()}",
    ]  # fmt: skip
    with package_configs():
        cfg = compose_run(overrides)
        config = to_objects(cfg)
        identities = []
        for lr in lrs:
            cfg.optim.lr = float(lr)
            identities.append(identity_of(cfg))
    splits = load_configured_splits(config.data)
    common = {
        "seed": config.seed,
        "model_options": dataclasses.asdict(config.model),
        "settings": config.trainer,
        "run_info": {"dataset": config.data.name},
    }
    optim = dataclasses.asdict(config.optim)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started, cpu = time.perf_counter(), time.process_time()
        singles = [
            Trainer(
                splits, run_dir=root / f"single-{lr}", optim_options={**optim, "lr": lr},
                identity=identity, **common,
            ).fit()
            for lr, identity in zip(lrs, identities, strict=True)
        ]  # fmt: skip
        single_seconds = time.perf_counter() - started
        single_cpu = time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        members = [
            Member(root / f"member-{lr}", lr, {}, identity)
            for lr, identity in zip(lrs, identities, strict=True)
        ]
        population = PopulationTrainer(splits, members=members, optim_options=optim, **common)
        results = population.fit()
        population_seconds = time.perf_counter() - started
        population_cpu = time.process_time() - cpu
    same = all(_same(a, b, exact=args.exact) for a, b in zip(singles, results, strict=True))
    print(f"machine: {machine_description()}")
    print(
        f"{args.experiment} {args.unit}, {len(lrs)} members, {args.epochs} epochs, batch "
        f"{args.batch_size}: {len(lrs)} single runs {single_seconds:.1f} s, population "
        f"{population_seconds:.1f} s ({single_seconds / population_seconds:.2f}x); CPU time "
        f"{single_cpu:.1f} s vs {population_cpu:.1f} s ({single_cpu / population_cpu:.2f}x; "
        f"wall time on a shared machine includes its disk's fsync waits); members equal to "
        f"their single runs ({'bit for bit' if args.exact else 'NLLs within 1e-4'}): {same}"
    )


if __name__ == "__main__":
    main()
