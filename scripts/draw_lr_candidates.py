"""Draw the paper's 10 learning-rate candidates once and write them into the search grid.

    python scripts/draw_lr_candidates.py            # (re)write configs/search/paper.yaml
    python scripts/draw_lr_candidates.py --check    # exit 1 if a search file differs from the draw

The draw is exp(u), u ~ U(-12, -6), numpy default_rng(20141211), sorted, 3 significant digits
(src/gru_repro/reports/lr_candidates.py). configs/search/paper.yaml holds all of them and every
experiment includes it; the other search files (quick.yaml) hold some of them, which --check
verifies too.
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

PAPER_GRID = "paper.yaml"  # the search file that holds the whole draw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    parser.add_argument("--seed", type=int, default=LR_SEED, help="RNG seed of the draw")
    parser.add_argument("--n", type=int, default=N_CANDIDATES, help="number of candidates")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=gru_repro.config_dir() / "search",
        help="folder holding the search grids (paper.yaml and its subsets)",
    )
    args = parser.parse_args(argv)

    lrs = draw_lr_candidates(seed=args.seed, n=args.n)
    paper = args.config_dir / PAPER_GRID
    if not paper.is_file():
        print(f"error: no {paper}: the search grid every experiment includes", file=sys.stderr)
        return 2
    print(f"candidates (seed {args.seed}): {format_lrs(lrs)}")
    stale = []
    if args.check:
        if read_lr_grid(paper) != lrs:
            stale.append(f"{paper} (not the draw)")
    elif write_lr_grid(paper, lrs):
        print(f"wrote {paper}")
    for subset in sorted(set(args.config_dir.glob("*.yaml")) - {paper}):
        if not set(read_lr_grid(subset)) <= set(lrs):
            stale.append(f"{subset} (rates outside the draw)")
    if stale:
        print(f"search grids differ from the seeded draw: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
