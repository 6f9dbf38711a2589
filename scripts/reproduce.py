"""Run the paper's protocol end to end: data, LR search, selection, seed reruns, reports.

    python scripts/reproduce.py --protocol quick    # make reproduce-quick: ~10-15 min on 2 cores
    python scripts/reproduce.py --protocol full     # days of CPU, resumable: outputs/runs
    python scripts/reproduce.py --runs results/runs # make reproduce: the committed full sweep
    python scripts/reproduce.py --speech whole      # ... with speech on all of FSDD (GPU/cluster)
    # make reproduce-released: the music sets with the released code's optimizer
    python scripts/reproduce.py --optim released --runs results/runs --out results/released

Runs go to --runs (default outputs/runs, outputs/quick/runs for --protocol quick: git-ignored)
and the reports to --out (default: the folder holding --runs, e.g. outputs/quick). A runs root
inside results/ is the committed one: the script says so in its first line, keeps the finished
runs, trains the missing ones and rewrites the committed reports.

Each experiment of a protocol is a file of configs/experiment/ (gru_repro.reports.protocol names
them), and each phase a Hydra multirun of `python -m gru_repro.train -m experiment=<file>` over
its grid; the search phase trains each unit's learning-rate candidates as one population process
(trainer.population=auto; --no-population: one process per run, same numbers). Run folders name
each run's identity (configs/train.yaml); the folder of every planned run is asked of the entry
point up front (gru_repro.train.plan_runs) and recorded in <runs>/protocols/<name>.json (kept
as it is when it records the same runs), so rerunning this script skips finished runs (train.py
reads their metrics.json), resumes interrupted ones (checkpoints/last.pt), launches nothing for
a phase that is already done, and protocols that differ in any setting share one runs root. A
diverged run is a finished run; a sweep that fails (crash, kill) is reported and the script goes
on with the other experiments, then exits 1.
Reports are rebuilt at the end (scripts/make_reports.py does the same on its own). The wall
time goes to <runs>/protocols/<name>.reproduce.json once a minute as the invocation runs
(gru_repro.reports.reproduce_log), so a sweep ended by SIGKILL keeps the time it ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from gru_repro.config.errors import CONFIG_ERRORS, one_line
from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import IncompleteSweepError, collect_experiment, read_run
from gru_repro.reports.protocol import (
    OPTIMIZERS,
    SEARCH_SEED,
    SPEECH_DATA,
    ExperimentPlan,
    Protocol,
    full_protocol,
    protocol_path,
    quick_protocol,
)
from gru_repro.reports.readme_section import project_readme_for
from gru_repro.reports.reproduce_log import ReproduceLog
from gru_repro.train import plan_runs

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = {"full": "outputs/runs", "quick": "outputs/quick/runs"}  # yours, git-ignored
COMMITTED = REPO_ROOT / "results"  # the published runs and reports
POLL_SECONDS = 5.0  # how often progress is checked while sweeps run
DATA_SETS = {  # what a plan reports as -> name for `python -m gru_repro.data.fetch --dataset`
    "music/jsb": "jsb",
    "music/nottingham": "nottingham",
    "music/musedata": "musedata",
    "music/piano_midi": "piano_midi",
    "speech/a": "fsdd",
    "speech/b": "fsdd",
}


def say(message: str, started: float) -> None:
    """Progress for the person at the terminal (the library logs; this script talks)."""
    print(f"[{time.monotonic() - started:7.0f} s] {message}", flush=True)


def pending(runs_root: Path, plan: ExperimentPlan, runs: list[tuple[str, float, int]]) -> int:
    def done(unit: str, lr: float, seed: int) -> bool:
        run = read_run(plan.run_dir(runs_root, unit, lr, seed))
        return run is not None and run.finished

    return sum(not done(*r) for r in runs)


def sweep_command(
    args, plan: ExperimentPlan, units, lrs, seeds, *, population: bool = False
) -> list[str]:
    """One Hydra multirun over units x lrs x seeds of one experiment; ``population``: the
    learning rates of each (unit, seed) trained as one population process (the same runs,
    several times faster; trainer.population in configs/trainer/default.yaml)."""
    return [
        *shlex.split(args.train_command),
        "-m",
        *plan.command,  # experiment=<its file>, and a protocol file's own overrides if any
        f"paths.output_root={args.runs}",
        f"hydra/launcher={args.launcher}",
        f"model={','.join(units)}",
        f"optim.lr={','.join(repr(float(lr)) for lr in lrs)}",
        f"seed={','.join(str(s) for s in seeds)}",
        *(["trainer.population=auto"] if population else []),
        *args.override,
    ]


def run_sweeps(
    args, plan: ExperimentPlan, commands: dict[str, list[str]], runs: list, started: float
) -> dict[str, int]:
    """Run the sweeps side by side and return their exit codes by name.

    Prints a line whenever another of `runs` (unit, lr, seed) finishes. Output of the sweeps
    goes to <runs>/<experiment>/sweeps-<name>.log, appended across invocations.
    """
    procs = {}
    if args.launcher == "local" and len(commands) > 1:  # share the cores between the sweeps
        n_jobs = max(1, (os.cpu_count() or 1) // len(commands))
        commands = {k: [*c, f"hydra.launcher.n_jobs={n_jobs}"] for k, c in commands.items()}
    for name, command in commands.items():
        log_file = args.runs / plan.experiment / f"sweeps-{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as log:
            log.write(f"\n$ {shlex.join(command)}\n")
            log.flush()
            procs[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )
    left = pending(args.runs, plan, runs)
    while running := [proc for proc in procs.values() if proc.poll() is None]:
        try:
            running[0].wait(timeout=POLL_SECONDS)  # returns as soon as that sweep ends
        except subprocess.TimeoutExpired:
            pass
        now = pending(args.runs, plan, runs)
        if now != left:
            left = now
            say(f"{plan.experiment}: {len(runs) - left}/{len(runs)} runs finished", started)
    return {name: proc.wait() for name, proc in procs.items()}


def run_experiment(args, plan: ExperimentPlan, started: float) -> bool:
    """Search, select, rerun seeds for one experiment; False if a sweep failed."""
    ok = True
    search = plan.search_runs()
    todo = pending(args.runs, plan, search)
    say(f"{plan.experiment}: search {len(search) - todo}/{len(search)} runs done", started)
    if todo:
        command = sweep_command(
            args, plan, plan.units, plan.lrs, [SEARCH_SEED], population=args.population
        )
        code = run_sweeps(args, plan, {"search": command}, search, started)["search"]
        if code != 0:
            say(f"{plan.experiment}: search sweep exited {code} (see sweeps-search.log)", started)
            ok = False
    result, _ = collect_experiment(plan, args.runs)
    seed_sweeps, seed_runs = {}, []
    for unit, unit_result in result.units.items():
        lr = unit_result.selected_lr
        if not all(r is not None and r.finished for r in unit_result.candidates.values()):
            say(f"{plan.experiment} {unit}: search unfinished; seeds wait for a rerun", started)
            ok = False
            continue
        if lr is None:
            say(f"{plan.experiment} {unit}: every candidate diverged; no seed runs", started)
            continue
        seeds = [s for s in plan.seeds if s != SEARCH_SEED]
        todo = pending(args.runs, plan, [(unit, lr, s) for s in seeds])
        say(f"{plan.experiment} {unit}: lr {lr:.3g} selected; {todo} seed run(s) to do", started)
        if todo:
            seed_sweeps[f"seeds-{unit}"] = sweep_command(args, plan, [unit], [lr], seeds)
            seed_runs += [(unit, lr, s) for s in seeds]
    for name, code in run_sweeps(args, plan, seed_sweeps, seed_runs, started).items():
        if code != 0:
            say(f"{plan.experiment}: {name} sweep exited {code} (see sweeps-{name}.log)", started)
            ok = False
    return ok


def fetch_data(args, protocol: Protocol, started: float) -> bool:
    names = sorted(
        {DATA_SETS[p.reports_as] for p in protocol.experiments if p.reports_as in DATA_SETS}
    )
    if not names:
        return True
    say(f"data: fetching and verifying {', '.join(names)}", started)
    # the same folder train.yaml reads (paths.data_dir); the mirror comes from $DATA_MIRROR
    data_dir = os.environ.get("GRU_REPRO_DATA_DIR") or "data"
    command = [sys.executable, "-m", "gru_repro.data.fetch", "--data-dir", data_dir]
    for name in names:
        command += ["--dataset", name]
    return subprocess.run(command, cwd=REPO_ROOT).returncode == 0


def chosen_protocol(args) -> Protocol:
    """The protocol file given, else the quick or the full protocol from configs/experiment/."""
    if args.protocol_file:
        return Protocol.load(args.protocol_file)
    if args.protocol == "quick":
        return quick_protocol()
    return full_protocol(speech=args.speech, optim=args.optim)


def chosen(plan: ExperimentPlan, only: list[str] | None) -> bool:
    """Whether --only (experiments or their experiment files) picks ``plan``; no --only: all."""
    return not only or plan.experiment in only or plan.config in only


def recorded_protocol(runs: Path, name: str) -> Protocol | None:
    """Protocol ``name`` as <runs>/protocols/<name>.json records it, if a readable file does.

    A rerun that plans the same runs keeps that record byte for byte (the reports read it),
    whatever form it has: a record written before the variants had experiment files names
    the base experiment and Hydra overrides (Protocol.plans_the_same_runs)."""
    path = protocol_path(runs, name)
    try:
        return Protocol.load(path) if path.is_file() else None
    except ValueError:
        return None


def with_planned_folders(protocol: Protocol, extra: list[str], only: list[str] | None) -> Protocol:
    """The protocol with the folder of every planned run (gru_repro.train.plan_runs).

    A config error (the extra overrides do not fit an experiment) is raised for the experiments
    to run; an experiment left out by --only that they do not fit keeps no folders (the reports
    then find none of its runs, and say so)."""
    plans = []
    for plan in protocol.experiments:
        try:
            runs = plan_runs(plan, extra)
            plans.append(plan.with_folders(lambda _, runs=runs: {k: r[0] for k, r in runs.items()}))
        except CONFIG_ERRORS:
            if chosen(plan, only):
                raise
            plans.append(plan)
    return dataclasses.replace(protocol, experiments=tuple(plans))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("full", "quick"), default="full")
    parser.add_argument(
        "--protocol-file", type=Path, help="a protocol file (protocols/<name>.json) to run instead"
    )
    parser.add_argument(
        "--speech",
        choices=tuple(SPEECH_DATA),
        default="subset",
        help="full protocol's speech data: the reduced CPU subsets (default) or all of FSDD",
    )
    parser.add_argument(
        "--optim",
        choices=tuple(OPTIMIZERS),
        default="paper",
        help="full protocol's optimizer: plain RMSProp as the paper states (default), or the "
        "released code's RMSProp with momentum and decay (music only; use its own --runs)",
    )
    parser.add_argument(
        "--runs", type=Path, help="runs root (default outputs/runs; quick: outputs/quick/runs)"
    )
    parser.add_argument(
        "--out", type=Path, help="reports folder (default: the folder holding --runs)"
    )
    parser.add_argument(
        "--launcher", default="local", help="hydra/launcher: local (joblib), slurm, basic, ..."
    )
    parser.add_argument("--only", action="append", help="run only this experiment (repeatable)")
    parser.add_argument("--skip-data", action="store_true", help="do not fetch data first")
    parser.add_argument(
        "--no-population",
        dest="population",
        action="store_false",
        help="train the LR search's candidates one process each, not one population per "
        "(experiment, unit) (the runs and their numbers are the same)",
    )
    parser.add_argument(
        "--override", action="append", default=[], help="extra Hydra override for every run"
    )
    parser.add_argument(
        "--train-command",
        default=f"{shlex.quote(sys.executable)} -m gru_repro.train",
        help="the training entry point (tests substitute a stand-in)",
    )
    args = parser.parse_args(argv)
    args.runs = (args.runs or REPO_ROOT / DEFAULT_RUNS[args.protocol]).resolve()
    args.out = (args.out or args.runs.parent).resolve()
    return args


def _shown(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def roots_line(runs: Path, out: Path) -> str:
    """The one line that starts every invocation: where runs and reports go, and whether that
    is the committed results/ (kept, continued and rewritten) or a folder of the user's own."""
    where = f"runs in {_shown(runs)}, reports in {_shown(out)}"
    if runs.is_relative_to(COMMITTED) or out.is_relative_to(COMMITTED):
        return (
            f"{where}: the COMMITTED results: finished runs are kept, missing ones are trained "
            "here and the committed reports are rewritten (runs of your own: --runs outputs/runs, "
            "make reproduce RUNS=outputs/runs)"
        )
    return f"{where} (yours; the committed results/ are left alone)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    started = time.monotonic()
    say(roots_line(args.runs, args.out), started)
    try:
        protocol = chosen_protocol(args)
    except CONFIG_ERRORS as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    if args.only:
        unknown = set(args.only) - {
            n for p in protocol.experiments for n in (p.experiment, p.config)
        }
        if unknown:
            print(
                f"error: --only {sorted(unknown)} not in protocol {protocol.name}", file=sys.stderr
            )
            return 2
    try:
        protocol = with_planned_folders(protocol, args.override, args.only)
    except CONFIG_ERRORS as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    args.runs.mkdir(parents=True, exist_ok=True)
    recorded = recorded_protocol(args.runs, protocol.name)
    if recorded is not None and recorded.plans_the_same_runs(protocol):
        protocol = recorded  # the same runs: the record stays as it was written
    else:
        protocol.save(args.runs)  # the whole grid, so the reports know what a sweep holds
    to_run = protocol
    if args.only:
        plans = tuple(p for p in protocol.experiments if chosen(p, args.only))
        to_run = Protocol(protocol.name, plans, protocol.description)
    say(f"protocol {protocol.name}: {protocol.description}", started)

    command = shlex.join(["scripts/reproduce.py", *(argv or sys.argv[1:])])
    with ReproduceLog(args.runs, protocol.name, command).beating():  # the reports' total time
        ok = args.skip_data or fetch_data(args, to_run, started)
        if not ok:
            say("data: fetch failed; fix it (see the message above) and rerun", started)
            return 1
        for plan in to_run.experiments:
            ok = run_experiment(args, plan, started) and ok

    say(f"reports -> {args.out}", started)
    readme = project_readme_for(args.out, REPO_ROOT)
    try:
        build_reports(args.runs, args.out, protocol, allow_incomplete=False, project_readme=readme)
    except IncompleteSweepError as err:
        build_reports(args.runs, args.out, protocol, allow_incomplete=True, project_readme=readme)
        if args.only and ok:  # the other experiments were not asked for: expected
            say(f"{len(err.missing)} run(s) of other experiments missing; reports marked", started)
        else:
            print(
                f"error: {err}\n(reports written, marked incomplete; rerun to finish)",
                file=sys.stderr,
            )
            ok = False
    say(f"done in {time.monotonic() - started:.0f} s; reports in {args.out}", started)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
