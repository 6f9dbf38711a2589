"""Rerun a committed learning-rate search as populations and compare it with the committed one.

    python scripts/rerun_search.py --experiment music/jsb                 # train, then compare
    python scripts/rerun_search.py --experiment music/jsb --compare-only  # compare what is there

Training: the experiment's search (seed 1, every unit x every candidate) with
``trainer.population=auto`` (one population process per unit, scripts/reproduce.py's default)
into ``<out>/runs``, timed; the wall and CPU seconds, the command, the machine and the commit go
to ``<out>/rerun.json``. A rerun of the same command skips finished members and resumes the
rest, so the timing is only that of a run that trained everything (``--compare-only`` keeps
the recorded one).

Comparison (``<out>/README.md``, written by this script from the two runs roots): per unit and
candidate the committed run's and the rerun's validation and test NLL, status and epochs, the
selected learning rate of both, and the wall time: the committed single runs' summed
``wall_seconds`` (each ran alone, one after another or two at a time, as recorded) against the
rerun's measured wall time. The match criterion (``TOLERANCE``) is stated in the report: float32
training reruns agree within rounding, which grows through 100-200 epochs, and an early stop
one patience window later or sooner moves a candidate's NLL by a few thousandths.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.provenance import cpu_model, git_commit
from gru_repro.reports.collect import Run, UnitResult, collect_experiment
from gru_repro.reports.protocol import SEARCH_SEED, ExperimentPlan, Protocol
from gru_repro.reports.table2 import UNIT_LABELS

REPO_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.01  # nats: a candidate's validation (and test) NLL matches within this
PROTOCOL = "full"  # the committed protocol whose search is rerun (results/runs/protocols/)
RERUN_FILE = "rerun.json"


def train(experiment: str, runs_root: Path, launcher: str, extra: list[str]) -> dict:
    """Run the experiment's search as populations into ``runs_root``; its timing record."""
    command = [
        sys.executable,
        "-m",
        "gru_repro.train",
        "-m",
        f"experiment={experiment}",
        "trainer.population=auto",
        f"hydra/launcher={launcher}",
        f"paths.output_root={runs_root}",
        *extra,
    ]
    start_wall = time.time()
    start_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    end_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "experiment": experiment,
        "command": " ".join(["python", *command[1:]]),
        "wall_seconds": round(time.time() - start_wall, 1),
        "cpu_seconds": round(
            (end_cpu.ru_utime - start_cpu.ru_utime) + (end_cpu.ru_stime - start_cpu.ru_stime), 1
        ),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "commit": git_commit(REPO_ROOT),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it (the report is committed)."""
    path = path.resolve()
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def _nll(run: Run | None, key: str) -> float:
    return run.get(key) if run is not None and run.usable else math.nan


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "–"


def _status(run: Run | None) -> str:
    if run is None:
        return "missing"
    return f"{run.status} @ {run.metrics.get('epochs', '?')}"


def candidate_rows(reference: UnitResult, rerun: UnitResult) -> tuple[list[str], int, int]:
    """Markdown rows of one unit's candidates; (rows, matched, compared)."""
    rows, matched, compared = [], 0, 0
    for lr in sorted(reference.candidates):
        ref, new = reference.candidates[lr], rerun.candidates.get(lr)
        deltas = [_nll(new, k) - _nll(ref, k) for k in ("valid_nll", "test_nll")]
        both_diverged = all(r is not None and r.status == "diverged" for r in (ref, new))
        ok = both_diverged or all(math.isfinite(d) and abs(d) <= TOLERANCE for d in deltas)
        compared += 1
        matched += ok
        marks = "".join(
            [" ← committed" if lr == reference.selected_lr else "",
             " ← rerun" if lr == rerun.selected_lr else ""]
        )  # fmt: skip
        rows.append(
            f"| {UNIT_LABELS.get(reference.unit, reference.unit)} | {lr:.3g}{marks} "
            f"| {_fmt(_nll(ref, 'valid_nll'))} | {_fmt(_nll(new, 'valid_nll'))} "
            f"| {_fmt(deltas[0], 4)} | {_fmt(_nll(ref, 'test_nll'))} "
            f"| {_fmt(_nll(new, 'test_nll'))} | {_fmt(deltas[1], 4)} "
            f"| {_status(ref)} | {_status(new)} | {'yes' if ok else 'NO'} |"
        )
    return rows, matched, compared


def selection_line(reference: UnitResult, rerun: UnitResult) -> str:
    """Whether the rerun selects the committed learning rate, or one within the tolerance."""
    label = UNIT_LABELS.get(reference.unit, reference.unit)
    ref_lr, new_lr = reference.selected_lr, rerun.selected_lr
    if ref_lr == new_lr:
        return f"- {label}: the same rate selected ({ref_lr:.3g})."
    if ref_lr is None or new_lr is None:
        return f"- {label}: selected {ref_lr} committed, {new_lr} rerun."
    ref_best = reference.candidates[ref_lr].get("valid_nll")
    new_choice = reference.candidates.get(new_lr)
    gap = (new_choice.get("valid_nll") - ref_best) if new_choice is not None else math.nan
    near = math.isfinite(gap) and gap <= TOLERANCE
    return (
        f"- {label}: the rerun selects {new_lr:.3g} instead of {ref_lr:.3g}; in the committed "
        f"search that rate's validation NLL was {_fmt(gap)} nats above the selected one's "
        f"({'a near-tie within' if near else 'MORE than'} the {TOLERANCE} tolerance)."
    )


def search_plan(reference_root: Path, experiment: str) -> ExperimentPlan:
    """The committed protocol's plan of ``experiment``, its search only (seed 1): its folders
    (identity hashes) are the rerun's too, below the rerun's root."""
    protocol = Protocol.load(reference_root, PROTOCOL)
    plans = {p.experiment: p for p in protocol.experiments}
    if experiment not in plans:
        raise KeyError(f"{experiment!r} is not in {PROTOCOL}: choose one of {', '.join(plans)}")
    return dataclasses.replace(plans[experiment], seeds=(SEARCH_SEED,))


def comparison_markdown(experiment: str, reference_root: Path, rerun_root: Path, timing) -> str:
    plan = search_plan(reference_root, experiment)
    reference, _ = collect_experiment(plan, reference_root)
    rerun, missing = collect_experiment(plan, rerun_root)
    lines = [
        f"# Rerun of the committed `{experiment}` search as populations",
        "",
        "Written by `scripts/rerun_search.py` from the committed runs "
        f"(`{_shown(reference_root)}`) and the rerun's (`{_shown(rerun_root)}`, summaries "
        f"committed). A candidate matches when its validation and test NLL agree within "
        f"{TOLERANCE} nats (or both diverged): float32 reruns agree within rounding, which grows "
        "over 100-200 epochs, and an early stop one patience window earlier or later moves a "
        "candidate's NLL by a few thousandths.",
        "",
    ]
    if missing:
        lines += [f"**{len(missing)} rerun candidate(s) missing or unfinished.**", ""]
    lines += [
        "| unit | lr | valid (committed) | valid (rerun) | Δ valid | test (committed) "
        "| test (rerun) | Δ test | status @ epochs (committed) | status @ epochs (rerun) | match |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    matched = compared = 0
    for unit in plan.units:
        rows, m, c = candidate_rows(reference.units[unit], rerun.units[unit])
        lines += rows
        matched, compared = matched + m, compared + c
    lines += ["", f"Candidates matching: {matched} of {compared}.", "", "Selection:", ""]
    lines += [selection_line(reference.units[u], rerun.units[u]) for u in plan.units]
    committed_wall = sum(
        r.get("wall_seconds")
        for u in plan.units
        for r in reference.units[u].candidates.values()
        if r is not None and math.isfinite(r.get("wall_seconds"))
    )
    lines += ["", "Wall time:", ""]
    lines.append(
        f"- before (committed single runs, one process each): {committed_wall / 60:.1f} min, "
        "the sum of their recorded wall_seconds (they ran on another day and machine, so the "
        "ratio is indicative)."
    )
    if timing:
        lines.append(
            f"- after (this rerun as populations, `{timing['command']}`): "
            f"{timing['wall_seconds'] / 60:.1f} min wall, {timing['cpu_seconds'] / 60:.1f} min "
            f"CPU, on {timing['cpus']} CPUs ({timing['cpu_model']}), commit "
            f"{timing['commit'][:10]}, {timing['date']}."
        )
    else:
        lines.append(f"- after: no {RERUN_FILE} (the rerun's timing was not recorded).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="music/jsb", help="a music search, e.g. music/jsb")
    parser.add_argument("--reference", type=Path, default=REPO_ROOT / "results" / "runs")
    parser.add_argument("--out", type=Path, default=None, help="default results/reruns/<name>")
    parser.add_argument("--launcher", default="local", help="hydra/launcher for the training")
    parser.add_argument("--compare-only", action="store_true", help="do not train")
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override")
    args = parser.parse_args(argv)
    name = "population_" + args.experiment.replace("/", "_")
    out = args.out or REPO_ROOT / "results" / "reruns" / name
    runs_root = out / "runs"
    try:
        search_plan(args.reference, args.experiment)
    except (KeyError, FileNotFoundError, ValueError) as err:
        print(f"error: --experiment {args.experiment}: {err}", file=sys.stderr)
        return 2
    timing_file = out / RERUN_FILE
    if not args.compare_only:
        timing = train(args.experiment, runs_root, args.launcher, args.override)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(timing_file, json.dumps(timing, indent=2) + "\n")
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else None
    text = comparison_markdown(args.experiment, args.reference, runs_root, timing)
    atomic_write_text(out / "README.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
