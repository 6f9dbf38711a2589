"""Write every report of results/ from run folders: Table 2, Figure 3, LR search, README.

    build_reports(runs_root, out_dir, protocol)   # raises IncompleteSweepError if runs lack
                                                  # a final status, unless allow_incomplete

Everything is derived from metrics.json / curves.csv under `runs_root` and the protocol, never
typed in; each file is written atomically.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.provenance import git_commit, machine_description
from gru_repro.reports.collect import SweepResults, collect
from gru_repro.reports.figure3 import FIGURE3_MAIN, FIGURE3_MORE, draw_figure3
from gru_repro.reports.lr_search import lr_search_markdown
from gru_repro.reports.protocol import Protocol
from gru_repro.reports.readme_section import update_readme_results
from gru_repro.reports.table2 import table2_csv, table2_markdown, table2_rows

log = logging.getLogger(__name__)

REPRODUCE_LOG = "reproduce.json"  # written into runs_root by scripts/reproduce.py


def _run_commits(results: SweepResults) -> list[str]:
    commits = set()
    for exp in results.experiments:
        for unit in exp.units.values():
            for run in list(unit.candidates.values()) + list(unit.seed_runs.values()):
                if run is not None and run.metrics.get("git_commit"):
                    commits.add(str(run.metrics["git_commit"]))
    return sorted(commits)


def _compute_seconds(results: SweepResults) -> float:
    seen, total = set(), 0.0
    for exp in results.experiments:
        for unit in exp.units.values():
            for run in list(unit.candidates.values()) + list(unit.seed_runs.values()):
                if run is not None and run.path not in seen:
                    seen.add(run.path)
                    value = run.get("wall_seconds")
                    total += value if math.isfinite(value) else 0.0
    return total


def _display_path(path: Path) -> str:
    """`path` relative to the current directory when it lies below it (no machine-specific
    prefixes in committed reports), else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def results_readme(results: SweepResults, written: list[str], reproduce_log: dict | None) -> str:
    log_ = reproduce_log or {}
    total = log_.get("total_seconds")
    compute = _compute_seconds(results)
    run_commits = ", ".join(f"`{c}`" for c in _run_commits(results)) or "–"
    lines = [
        "# Results",
        "",
        "Written by `scripts/make_reports.py` from the run folders; do not edit by hand.",
        "",
        f"- protocol: `{results.protocol.name}` — {results.protocol.description}",
        f"- command: `{log_.get('command', 'scripts/make_reports.py (runs made elsewhere)')}`",
        f"- runs folder: `{_display_path(results.runs_root)}`",
        f"- code commit (reports): `{git_commit()}`",
        f"- code commit(s) of the runs: {run_commits}",
        f"- machine: {log_.get('machine', machine_description())}",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"
        + (f" (reproduce started {log_['started']})" if log_.get("started") else ""),
        "- total time (wall clock of scripts/reproduce.py, all invocations): "
        + (f"{total / 3600:.2f} h ({total:.0f} s)" if total is not None else "not recorded"),
        f"- compute (sum of the runs' wall_seconds): {compute / 3600:.2f} h ({compute:.0f} s)",
    ]
    if results.missing:
        lines.append(f"- **incomplete**: {len(results.missing)} run(s) missing or unfinished")
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
    results = collect(runs_root, protocol)
    if not allow_incomplete:
        results.require_complete()
    rows = table2_rows(results)
    incomplete = bool(results.missing)
    written = [
        atomic_write_text(
            out_dir / "table2.md",
            table2_markdown(rows, protocol_name=protocol.name, incomplete=incomplete),
        ),
        atomic_write_text(out_dir / "table2.csv", table2_csv(rows)),
        atomic_write_text(out_dir / "lr_search.md", lr_search_markdown(results)),
    ]
    for columns, name in ((FIGURE3_MAIN, "figure3.png"), (FIGURE3_MORE, "figure3_more.png")):
        figure = draw_figure3(results.experiments, columns, out_dir / name)
        if figure is not None:  # None: the protocol has none of these data sets
            written.append(figure)
    log_path = runs_root / REPRODUCE_LOG
    reproduce_log = json.loads(log_path.read_text()) if log_path.is_file() else None
    readme = results_readme(results, [p.name for p in written], reproduce_log)
    written.append(atomic_write_text(out_dir / "README.md", readme))
    if project_readme is not None and update_readme_results(project_readme, out_dir):
        written.append(project_readme)
    log.info("wrote %s", ", ".join(str(p) for p in written))
    return written
