"""Move committed run summaries from the old layout into identity-named folders, once.

    python scripts/migrate_run_folders.py --from results/runs --to results/runs
    python scripts/migrate_run_folders.py --from results/runs_released --to results/runs

Old layout: <root>/<experiment>/<unit>/lr=<lr>/seed=<seed>/ with <root>/protocol.json and
<root>/reproduce.json. New layout (configs/train.yaml): <root>/<experiment>/<unit>/<optim>/
lr=<lr>/seed=<seed>-<identity hash>/ with <root>/protocols/<name>.json (every planned run's
folder) and <root>/protocols/<name>.reproduce.json.

The identity of each old run is what the current configs compose for its protocol's overrides
(gru_repro.train.plan_runs): exactly what a rerun of the protocol would train, so a rerun
finds the migrated runs finished. Each metrics.json must agree with that identity on every
setting it recorded (data set, unit, optimizer, lr, seed, batch size, epoch budget, patience,
evaluation spacing, weight noise), or nothing is moved. metrics.json gains `identity`,
`identity_hash` and its new `run_dir`; curves.csv moves unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.config.identity import identity_hash
from gru_repro.reports.protocol import Protocol, protocol_path, reproduce_log_path, run_key
from gru_repro.train import plan_runs

# metrics.json field -> identity key path: what an old run recorded of its config
RECORDED = {
    "dataset": ("data", "name"),
    "unit": ("model", "unit"),
    "optim": ("optim", "name"),
    "lr": ("optim", "lr"),
    "seed": ("seed",),
    "batch_size": ("trainer", "batch_size"),
    "max_epochs": ("trainer", "max_epochs"),
    "patience": ("trainer", "patience"),
    "eval_every": ("trainer", "eval_every"),
    "weight_noise": ("trainer", "weight_noise"),
}


def disagreements(metrics: dict, identity: dict) -> list[str]:
    found = []
    for field, path in RECORDED.items():
        if field not in metrics:
            continue
        value = identity
        for key in path:
            value = value[key]
        if metrics[field] != value:
            found.append(f"{field} {metrics[field]!r} != {'.'.join(path)} {value!r}")
    return found


def migrate(old_root: Path, new_root: Path) -> int:
    protocol = Protocol.load(old_root / "protocol.json")
    moves = []  # (old folder, new folder, new metrics)
    plans = []
    for plan in protocol.experiments:
        runs = plan_runs(plan)
        folders = {key: run[0] for key, run in runs.items()}
        plans.append(plan.with_folders(lambda _, folders=folders: folders))
        for (unit, lr, seed), (folder, identity) in runs.items():
            old = old_root / plan.experiment / run_key(unit, lr, seed)
            metrics_file = old / "metrics.json"
            if not metrics_file.is_file():
                continue
            metrics = json.loads(metrics_file.read_text())
            problems = disagreements(metrics, identity)
            if problems:
                print(f"error: {old}: {'; '.join(problems)}; nothing moved", file=sys.stderr)
                return 2
            new = new_root / folder
            metrics.update(
                identity=identity, identity_hash=identity_hash(identity), run_dir=str(new)
            )
            moves.append((old, new, metrics))
    protocol = dataclasses.replace(protocol, experiments=tuple(plans))
    for old, new, metrics in moves:
        if new.exists():
            print(f"error: {new} exists already; nothing more moved", file=sys.stderr)
            return 2
        new.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(old), str(new))
        text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
        atomic_write_text(new / "metrics.json", text)
    protocol.save(new_root)
    if (old_root / "reproduce.json").is_file():
        shutil.move(
            str(old_root / "reproduce.json"), str(reproduce_log_path(new_root, protocol.name))
        )
    (old_root / "protocol.json").unlink()
    print(
        f"moved {len(moves)} runs; protocol {protocol.name} -> "
        f"{protocol_path(new_root, protocol.name)}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="old_root", type=Path, required=True)
    parser.add_argument("--to", dest="new_root", type=Path, required=True)
    args = parser.parse_args(argv)
    return migrate(args.old_root, args.new_root)


if __name__ == "__main__":
    sys.exit(main())
