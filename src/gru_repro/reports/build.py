"""Write every report of results/ from run folders: Table 2, Figure 3, LR search, README.

    build_reports(runs_root, out_dir, protocol)   # raises IncompleteSweepError if runs lack
                                                  # a final status, unless allow_incomplete

Everything is derived from metrics.json / curves.csv under `runs_root` and the protocol, never
typed in. The files are built in a staging folder and swapped in as one set
(`gru_repro.reports.publish`), so a build killed at any moment leaves the complete old set or
the complete new one; temp files and staging folders of killed builds are deleted first.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gru_repro.atomic import atomic_write_text, remove_stale_temp_files
from gru_repro.provenance import (
    RunOrigin,
    git_commit,
    machine_description,
    run_origins,
    utc_now,
)
from gru_repro.reports.collect import Run, SweepResults, collect
from gru_repro.reports.figure3 import FIGURE3_MAIN, FIGURE3_MORE, draw_figure3
from gru_repro.reports.lr_search import lr_search_markdown
from gru_repro.reports.populations import compute_seconds
from gru_repro.reports.protocol import Protocol, reproduce_log_path
from gru_repro.reports.publish import recover_report_folder, staged_report_set
from gru_repro.reports.readme_section import update_readme_results
from gru_repro.reports.table2 import table2_csv, table2_rows
from gru_repro.reports.table2_markdown import table2_markdown

log = logging.getLogger(__name__)


def _runs(results: SweepResults) -> list[Run]:
    """Every run folder the reports read (search candidates and seed runs), once each."""
    seen: dict[Path, Run] = {}
    for exp in results.experiments:
        for unit in exp.units.values():
            for run in list(unit.candidates.values()) + list(unit.seed_runs.values()):
                if run is not None:
                    seen.setdefault(run.path, run)
    return list(seen.values())


def _display_path(path: Path) -> str:
    """`path` relative to the current directory when it lies below it (no machine-specific
    prefixes in committed reports), else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _origins_table(origins: list[RunOrigin]) -> list[str]:
    """Who made the runs: one row per (code commit, machine), from each run's metrics.json."""
    lines = [
        "| code commit of the runs | commit date (runs made at or after it) | machine | runs |",
        "|---|---|---|---|",
    ]
    for origin in origins:
        machine = origin.machine or "not recorded (run older than metrics.json's `machine`)"
        date = origin.commit_date or "not in this clone's history"
        lines.append(f"| `{origin.commit}` | {date} | {machine} | {origin.runs} |")
    return lines


def _dates_line(origins: list[RunOrigin], reproduce_log: dict) -> str:
    dates = sorted(filter(None, (o.commit_date for o in origins)))
    line = "- dates of the runs: " + (
        f"from {dates[0]} to {dates[-1]} (their commits' dates; metrics.json records no date)"
        if dates
        else "not recorded"
    )
    if reproduce_log.get("started"):
        line += (
            f"; scripts/reproduce.py's first recorded invocation on this runs folder "
            f"{reproduce_log['started']}"
        )
        if reproduce_log.get("last_started"):
            line += f", last {reproduce_log['last_started']}"
    return line


def results_readme(results: SweepResults, written: list[str], reproduce_log: dict | None) -> str:
    """results/README.md: what the reports were built from, and who made those runs where."""
    log_ = reproduce_log or {}
    total = log_.get("total_seconds")
    runs = _runs(results)
    compute = compute_seconds(runs)
    origins = run_origins(run.metrics for run in runs)
    command = log_.get("command", "scripts/make_reports.py (runs made elsewhere)")
    invocations = log_.get("invocations")
    lines = [
        "# Results",
        "",
        "Written by `scripts/make_reports.py` from the run folders; do not edit by hand.",
        "",
        f"- protocol: `{results.protocol.name}` — {results.protocol.description}",
        f"- runs folder: `{_display_path(results.runs_root)}` ({len(runs)} runs read)",
        _dates_line(origins, log_),
        f"- last command on the runs folder: `{command}`"
        + (f" ({invocations} invocation(s) recorded)" if invocations else "")
        + (f", on {log_['machine']}" if log_.get("machine") else ""),
        "- total time (wall clock of the recorded scripts/reproduce.py invocations): "
        + (f"{total / 3600:.2f} h ({total:.0f} s)" if total is not None else "not recorded"),
        f"- compute (sum of the runs' wall_seconds, each population process once): "
        f"{compute / 3600:.2f} h ({compute:.0f} s)",
        f"- reports built {utc_now()} at code commit `{git_commit()}` on {machine_description()}",
    ]
    if results.missing:
        lines.append(
            f"- **incomplete**: {len(results.missing)} run(s) missing or unfinished (seed reruns "
            "counted at each unit's rate selected so far; none while a unit has no finished, "
            "non-diverged run)"
        )
    lines += ["", "Where the runs were made:", "", *_origins_table(origins)]
    lines += ["", "Files:", ""] + [f"- [{name}]({name})" for name in written] + [""]
    return "\n".join(lines)


def build_reports(
    runs_root: str | Path,
    out_dir: str | Path,
    protocol: Protocol,
    *,
    allow_incomplete: bool = False,
    project_readme: Path | None = None,
) -> list[Path]:
    """Build results/{table2.md,table2.csv,lr_search.md,figure3.png,figure3_more.png,README.md}
    (a figure only when the protocol has one of its data sets).

    `project_readme`: a README whose results block (between the markers of
    `gru_repro.reports.readme_section`) is replaced with Table 2 and the figures.
    """
    runs_root, out_dir = Path(runs_root), Path(out_dir)
    recover_report_folder(out_dir)  # a killed build's half swap finished, its debris deleted
    if project_readme is not None:
        remove_stale_temp_files(project_readme.parent)
    results = collect(runs_root, protocol)
    if not allow_incomplete:
        results.require_complete()
    rows = table2_rows(results)
    incomplete = bool(results.missing)
    with staged_report_set(out_dir) as staging:
        written = [
            atomic_write_text(
                staging / "table2.md",
                table2_markdown(rows, protocol_name=protocol.name, incomplete=incomplete),
            ),
            atomic_write_text(staging / "table2.csv", table2_csv(rows)),
            atomic_write_text(staging / "lr_search.md", lr_search_markdown(results)),
        ]
        figures = ((FIGURE3_MAIN, "figure3.png"), (FIGURE3_MORE, "figure3_more.png"))
        for columns, name in figures:
            figure = draw_figure3(results.experiments, columns, staging / name)
            if figure is not None:  # None: the protocol has none of these data sets
                written.append(figure)
        log_path = reproduce_log_path(runs_root, protocol.name)
        reproduce_log = json.loads(log_path.read_text()) if log_path.is_file() else None
        readme = results_readme(results, [p.name for p in written], reproduce_log)
        written.append(atomic_write_text(staging / "README.md", readme))
    written = [out_dir / p.name for p in written]  # swapped in as one set
    for _, name in figures:  # a figure this protocol no longer has must not stay behind
        if out_dir / name not in written:
            (out_dir / name).unlink(missing_ok=True)
    if project_readme is not None and update_readme_results(project_readme, out_dir):
        written.append(project_readme)
    log.info("wrote %s", ", ".join(str(p) for p in written))
    return written
