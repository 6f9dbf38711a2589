"""Which runs trained together as one population process, and what each run cost.

A population member's metrics.json records its process's wall time (the members train side by
side, one update for all of them), so summing or averaging members' `wall_seconds` as if each
were a lone run counts one process many times. The reports read a run's cost from here.
"""

from __future__ import annotations

import math

from hydra.core.override_parser.overrides_parser import OverridesParser

from gru_repro.reports.collect import Run

POPULATION_OVERRIDE = "trainer.population_lrs="  # the sweeper gives every member its population


def population_of(run: Run) -> tuple | None:
    """Which population process trained ``run``: (unit folder, seed, the members' rates) from
    its .hydra/overrides.yaml, None for a run trained on its own. A member's `wall_seconds` is
    its population's wall time (they train side by side in one process)."""
    overrides = run.path / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        return None
    for line in overrides.read_text().splitlines():
        text = line.removeprefix("- ").strip()
        if text.startswith(POPULATION_OVERRIDE):
            return (run.path.parent.parent, run.metrics.get("seed"), text)
    return None


def population_size(run: Run) -> int:
    """How many runs trained in ``run``'s process: 1 for a lone run, else the number of rates
    in its `trainer.population_lrs=[...]` override."""
    key = population_of(run)
    if key is None:
        return 1
    rates = OverridesParser.create().parse_override(key[2]).value()  # Hydra's own list syntax
    return max(1, len(rates))


def run_share_seconds(run: Run) -> float:
    """Wall seconds of training that belong to ``run``: a lone run's `wall_seconds`, a
    population member's its process's wall time divided by the members (NaN if unrecorded)."""
    return run.get("wall_seconds") / population_size(run)


def compute_seconds(runs: list[Run]) -> float:
    """Core seconds the runs took: each lone run's `wall_seconds`, and each population's once
    (its longest member's: members that stop early record less)."""
    lone, populations = 0.0, {}
    for run in runs:
        seconds = run.get("wall_seconds")
        if not math.isfinite(seconds):
            continue
        key = population_of(run)
        if key is None:
            lone += seconds
        else:
            populations[key] = max(populations.get(key, 0.0), seconds)
    return lone + sum(populations.values())
