"""Read run folders (metrics.json, curves.csv) and select each unit's learning rate.

Only the files a run leaves behind are read (docs/ARCHITECTURE.md, "Runs"): the reports can be
rebuilt on any machine from committed run summaries, without checkpoints.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from gru_repro.reports.protocol import SEARCH_SEED, ExperimentPlan, Protocol
from gru_repro.run_format import CURVE_COLUMNS, CURVES_FILE, FINAL_STATUSES, METRICS_FILE

log = logging.getLogger(__name__)

# A run "still improving at the epoch budget" (Table 2, lr_search.md): see Run.still_improving.
BUDGET_FRACTION = 0.1
STILL_IMPROVING_NOTE = "still improving at the epoch budget"
STILL_IMPROVING_RULE = (
    "status `completed` (the epoch budget ran out) with `best_epoch` > `max_epochs` − "
    "`patience` × `eval_every` when metrics.json records patience, otherwise with `best_epoch` "
    "in the last 10% of `max_epochs` (`best_epoch` > 0.9 × `max_epochs`)"
)
GRID_EDGE_NOTE = "selected rate at the edge of the grid"


class IncompleteSweepError(RuntimeError):
    """Raised when Table 2 would be built from a sweep with missing or unfinished runs."""

    def __init__(self, missing: list[Path]):
        self.missing = missing
        shown = "\n  ".join(str(p) for p in missing[:50])
        more = f"\n  ... and {len(missing) - 50} more" if len(missing) > 50 else ""
        super().__init__(
            f"{len(missing)} run(s) missing or unfinished (no final status in metrics.json); "
            f"rerun scripts/reproduce.py, or pass --allow-incomplete:\n  {shown}{more}"
        )


@dataclass
class Run:
    """One run folder: its metrics.json (flat) and, when present, curves.csv rows."""

    path: Path
    metrics: dict
    curves: list[dict[str, float]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.metrics.get("status", "running"))

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def usable(self) -> bool:
        """Finished, not diverged, with a finite validation NLL: a candidate for selection."""
        valid = self.metrics.get("valid_nll")
        return (
            self.finished
            and self.status != "diverged"
            and isinstance(valid, (int, float))
            and math.isfinite(valid)
        )

    def get(self, key: str) -> float:
        value = self.metrics.get(key)
        return float(value) if isinstance(value, (int, float)) else math.nan

    @property
    def still_improving(self) -> bool:
        """The epoch budget, not early stopping, ended the run while validation still improved.

        `completed` with `best_epoch` > `max_epochs` - window, where window is `patience`
        evaluations (times `eval_every`) when metrics.json records them, else 10% of
        `max_epochs` (runs written before metrics.json recorded `patience`).
        """
        best, budget = self.get("best_epoch"), self.get("max_epochs")
        if self.status != "completed" or not (math.isfinite(best) and math.isfinite(budget)):
            return False
        patience, every = self.get("patience"), self.get("eval_every")
        if math.isfinite(patience) and patience > 0:
            window = patience * (every if math.isfinite(every) and every > 0 else 1)
        else:
            window = BUDGET_FRACTION * budget
        return best > budget - window


def read_run(path: str | Path) -> Run | None:
    """The run in `path`, or None when it has no metrics.json yet (never started)."""
    path = Path(path)
    metrics_file = path / METRICS_FILE
    if not metrics_file.is_file():
        return None
    try:
        metrics = json.loads(metrics_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{metrics_file}: not valid JSON ({err}); delete the run and rerun"
        ) from err
    if not isinstance(metrics, dict):
        raise ValueError(f"{metrics_file}: expected a JSON object of metrics")
    return Run(path, metrics, read_curves(path / CURVES_FILE))


def _cell(text: str | None) -> float:
    """An empty cell (valid_nll on an epoch without validation) is NaN."""
    text = (text or "").strip()
    return float(text) if text else math.nan


def _row_problem(cells: list[str], header: list[str]) -> str | None:
    """Why a curves.csv row cannot be read (too few or many cells, a curve cell that is not a
    number), or None."""
    if len(cells) != len(header):
        return f"{len(cells)} cells where the header has {len(header)}"
    for name, text in zip(header, cells, strict=True):
        if name not in CURVE_COLUMNS:
            continue
        try:
            _cell(text)
        except ValueError:
            return f"{name} {text!r} is not a number"
    return None


def read_curves(path: Path) -> list[dict[str, float]]:
    """curves.csv rows as floats; empty cells (no validation that epoch) become NaN.

    A file cut short (copied while written, or by a writer killed before the writes were
    atomic) ends in a torn row: no final newline, too few cells, or a number cut into something
    else ("3.1e"). That last row is dropped with a warning naming the file, so no report plots a
    truncated number; a bad row anywhere else is an error naming the file and the line.
    """
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    records = [(reader.line_num, cells) for cells in reader if cells]  # blank lines skipped
    torn = None  # (line, cells, why) of the dropped last row
    if records and not text.endswith(("\n", "\r")):
        torn = (*records.pop(), "no final newline")
    if not records:
        log.warning("%s: cut short before the end of its header; the run has no curves", path)
        return []
    (_, header), body = records[0], records[1:]
    absent = [c for c in CURVE_COLUMNS if c not in header]
    if absent:
        raise ValueError(f"{path}: missing columns {absent}; expected {list(CURVE_COLUMNS)}")
    if torn is None and body and (problem := _row_problem(body[-1][1], header)):
        torn = (*body.pop(), problem)
    if torn is not None:
        line, cells, why = torn
        log.warning(
            "%s: dropped its last row, line %d, cut short (%s): %r",
            path,
            line,
            why,
            ",".join(cells),
        )
    rows = []
    for line, cells in body:
        if problem := _row_problem(cells, header):
            raise ValueError(f"{path}: line {line}: {problem}; the file is damaged: rerun the run")
        values = dict(zip(header, cells, strict=True))
        rows.append({c: _cell(values[c]) for c in CURVE_COLUMNS})
    return rows


@dataclass
class UnitResult:
    """One (experiment, unit): every search candidate, the selected lr and its seed runs."""

    unit: str
    candidates: dict[float, Run | None]  # lr -> search run (seed 1)
    selected_lr: float | None
    seed_runs: dict[int, Run | None]  # seed -> run at selected_lr

    @property
    def finished_seed_runs(self) -> list[Run]:
        return [r for r in self.seed_runs.values() if r is not None and r.finished]

    @property
    def grid_edge(self) -> str | None:
        """`largest` / `smallest` when the selected lr is that end of a grid of 2+ candidates:
        the best rate may lie outside the grid."""
        lrs = sorted(self.candidates)
        if self.selected_lr is None or len(lrs) < 2:
            return None
        if self.selected_lr == lrs[-1]:
            return "largest"
        if self.selected_lr == lrs[0]:
            return "smallest"
        return None


@dataclass
class ExperimentResult:
    plan: ExperimentPlan
    units: dict[str, UnitResult]


@dataclass
class SweepResults:
    protocol: Protocol
    runs_root: Path
    experiments: list[ExperimentResult]
    missing: list[Path]  # run folders without a final status

    def require_complete(self) -> None:
        if self.missing:
            raise IncompleteSweepError(self.missing)


def select_lr(candidates: dict[float, Run | None]) -> float | None:
    """The candidate with the lowest validation NLL among finished, non-diverged runs.

    Ties go to the smaller learning rate (the candidates are iterated in ascending order).
    """
    usable = [
        (run.get("valid_nll"), lr) for lr, run in sorted(candidates.items()) if run and run.usable
    ]
    return min(usable)[1] if usable else None


def collect_experiment(
    plan: ExperimentPlan, runs_root: Path
) -> tuple[ExperimentResult, list[Path]]:
    missing: list[Path] = []

    def load(unit: str, lr: float, seed: int) -> Run | None:
        folder = plan.run_dir(runs_root, unit, lr, seed)
        run = read_run(folder)
        if run is None or not run.finished:
            missing.append(folder)
        return run

    units = {}
    for unit in plan.units:
        candidates = {lr: load(unit, lr, SEARCH_SEED) for lr in plan.lrs}
        selected = select_lr(candidates)
        seed_runs: dict[int, Run | None] = {}
        if selected is not None:
            for seed in plan.seeds:
                seed_runs[seed] = (
                    candidates[selected] if seed == SEARCH_SEED else load(unit, selected, seed)
                )
        units[unit] = UnitResult(unit, candidates, selected, seed_runs)
    return ExperimentResult(plan, units), missing


def collect(runs_root: str | Path, protocol: Protocol) -> SweepResults:
    """Read every run the protocol expects under `runs_root`; nothing else is looked at."""
    runs_root = Path(runs_root)
    experiments, missing = [], []
    for plan in protocol.experiments:
        result, absent = collect_experiment(plan, runs_root)
        experiments.append(result)
        missing.extend(absent)
    if missing:
        log.warning("%d expected run(s) missing or unfinished under %s", len(missing), runs_root)
    return SweepResults(protocol, runs_root, experiments, missing)
