"""Write results/chain/<name>.md: the one-change-at-a-time chain from our batch-8 protocol to the
released code's exact training (gru_repro.reports.chain), read from the committed runs.

    python scripts/chain_summary.py                       # make chain: results/chain/
    python scripts/chain_summary.py --runs outputs/runs --out outputs/chain

Train a step (each is one population of the paper's 10 learning rates for the unit):

    python -m gru_repro.train -m experiment=chain/nottingham_gru_1_sum_objective \\
        paths.output_root=results/runs

Steps 0 and 5 are the runs of protocols already in results/runs (`released_optim/nottingham`,
`released/nottingham`); step 6 reads step 5's runs. The folder of every run is asked of the
entry point (gru_repro.train.planned_folders: the identity hash in the folder name), so a run
of another identity in the same folder group is never read. A step whose runs have not all
finished shows how many have; rerun this script as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.config.store import experiment_sweep
from gru_repro.provenance import run_origins
from gru_repro.reports.chain import CHAINS, Chain, StepResult, chain_markdown
from gru_repro.reports.collect import read_run
from gru_repro.reports.protocol import SEARCH_SEED
from gru_repro.train import planned_folders

REPO_ROOT = Path(__file__).resolve().parents[1]


def step_results(chain: Chain, runs_root: Path) -> list[StepResult]:
    """Every step's search runs (seed 1, one unit, the step's candidates) read from runs_root."""
    results, folders_of = [], {}
    for step in chain.steps:
        if step.config not in folders_of:  # step 6 reads step 5's runs: compose once
            lrs = experiment_sweep(step.config).lrs
            folders_of[step.config] = planned_folders(
                [f"experiment={step.config}"], [chain.unit], list(lrs), [SEARCH_SEED]
            )
        folders = folders_of[step.config]
        candidates = {lr: read_run(runs_root / folder) for (_, lr, _), folder in folders.items()}
        results.append(StepResult(step, candidates))
    return results


def provenance_lines(results: list[StepResult], runs_root: Path) -> list[str]:
    """Where and with which code the runs were made (each run's metrics.json), once each."""
    runs = {run.path: run for r in results for run in r.candidates.values() if run and run.finished}
    lines = [f"Runs read from `{runs_root.as_posix()}` ({len(runs)} finished runs):", ""]
    lines += [
        f"- {origin.runs} run(s) at code commit `{origin.commit}` on "
        f"{origin.machine or 'a machine not recorded'}"
        for origin in run_origins(run.metrics for run in runs.values())
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", type=Path, default=Path("results/chain"))
    parser.add_argument("--chain", choices=sorted(CHAINS), default=sorted(CHAINS))
    args = parser.parse_args()
    names = [args.chain] if isinstance(args.chain, str) else args.chain
    for name in names:
        chain = CHAINS[name]
        results = step_results(chain, args.runs)
        text = chain_markdown(chain, results, provenance_lines(results, args.runs))
        out = args.out / f"{chain.name}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
