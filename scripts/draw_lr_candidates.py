"""Draw the paper's 10 learning-rate candidates once and write them into the experiment configs.

    python scripts/draw_lr_candidates.py            # (re)write configs/experiment/{music,speech}/*
    python scripts/draw_lr_candidates.py --check    # exit 1 if a config differs from the draw

The draw is exp(u), u ~ U(-12, -6), numpy default_rng(20141211), sorted, 3 significant digits
(src/gru_repro/reports/lr_candidates.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gru_repro
from gru_repro.reports.lr_candidates import (
    LR_SEED,
    N_CANDIDATES,
    draw_lr_candidates,
    format_lrs,
    read_lr_grid,
    write_lr_grid,
)

EXPERIMENT_GROUPS = ("music", "speech")  # experiments that carry the paper's LR search


def experiment_configs(config_dir: Path) -> list[Path]:
    return sorted(p for group in EXPERIMENT_GROUPS for p in (config_dir / group).glob("*.yaml"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    parser.add_argument("--seed", type=int, default=LR_SEED, help="RNG seed of the draw")
    parser.add_argument("--n", type=int, default=N_CANDIDATES, help="number of candidates")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=gru_repro.config_dir() / "experiment",
        help="folder holding music/*.yaml and speech/*.yaml",
    )
    args = parser.parse_args(argv)

    lrs = draw_lr_candidates(seed=args.seed, n=args.n)
    configs = experiment_configs(args.config_dir)
    if not configs:
        print(f"no experiment configs under {args.config_dir}/{{music,speech}}", file=sys.stderr)
        return 1
    print(f"candidates (seed {args.seed}): {format_lrs(lrs)}")
    stale = []
    for path in configs:
        if args.check:
            if read_lr_grid(path) != lrs:
                stale.append(path)
        elif write_lr_grid(path, lrs):
            print(f"wrote {path}")
    if stale:
        names = ", ".join(str(p) for p in stale)
        print(f"configs differ from the seeded draw: {names}; run without --check", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
