"""The samples gallery of ``make samples``: best run per data set and unit, a few files each.

A finished run is a folder with ``metrics.json`` and ``checkpoints/best.pt`` (see
docs/ARCHITECTURE.md). For every (data set, unit) the run with the lowest ``valid_nll`` is
sampled, so a listener can compare tanh, GRU and LSTM as the paper compares their NLLs.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from gru_repro.data.splits import DataKind
from gru_repro.sampling.export import SampleOptions, load_test_sequences, write_samples
from gru_repro.sampling.loading import CHECKPOINT_IN_RUN, load_run

log = logging.getLogger(__name__)

USABLE_STATUS = ("completed", "early_stopped")


@dataclass(frozen=True)
class RunSummary:
    folder: Path
    dataset: str
    unit: str
    valid_nll: float
    test_nll: float | None
    seed: int | None
    lr: float | None


def _read_metrics(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        log.warning("skipping %s: unreadable metrics.json (%s)", path.parent, error)
        return None


def find_runs(roots: Iterable[str | Path]) -> list[RunSummary]:
    """Every finished run under ``roots`` with a best checkpoint and a finite valid NLL."""
    runs = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for metrics_path in sorted(root.rglob("metrics.json")):
            folder = metrics_path.parent
            metrics = _read_metrics(metrics_path)
            if metrics is None or not (folder / CHECKPOINT_IN_RUN).is_file():
                continue
            valid = metrics.get("valid_nll")
            if metrics.get("status") not in USABLE_STATUS or valid is None:
                continue
            if not math.isfinite(float(valid)):
                continue
            runs.append(
                RunSummary(
                    folder=folder,
                    dataset=str(metrics.get("dataset", "?")),
                    unit=str(metrics.get("unit", "?")),
                    valid_nll=float(valid),
                    test_nll=metrics.get("test_nll"),
                    seed=metrics.get("seed"),
                    lr=metrics.get("lr"),
                )
            )
    return runs


def best_runs(runs: Iterable[RunSummary]) -> list[RunSummary]:
    """The lowest-valid-NLL run of each (data set, unit), sorted by data set then unit."""
    best: dict[tuple[str, str], RunSummary] = {}
    for run in runs:
        key = (run.dataset, run.unit)
        if key not in best or run.valid_nll < best[key].valid_nll:
            best[key] = run
    return [best[key] for key in sorted(best)]


def sample_gallery(
    chosen: list[RunSummary],
    out_dir: str | Path,
    options: SampleOptions,
    *,
    music_frames: int = 64,
    speech_seconds: float = 2.0,
) -> list[tuple[RunSummary, list[Path]]]:
    """Write ``options.n`` samples of each chosen run into ``out_dir/<dataset>/``.

    Files are named after the unit ({unit}_0.mid, {unit}s.png, ...); lengths are
    ``music_frames`` frames or ``speech_seconds`` seconds. Priming applies to music only.
    """
    out_dir = Path(out_dir)
    results = []
    for summary in chosen:
        run = load_run(summary.folder)
        references = None
        if options.references > 0 or options.prime > 0:
            try:
                references = load_test_sequences(run, options.data_dir)
            except Exception as error:  # data not fetched here: samples alone still help
                log.warning("%s: no test sequences to show (%s)", summary.folder, error)
        if run.facts.kind is DataKind.SPEECH:
            rate = int(run.facts.info["sample_rate"])  # Hz
            run_options = replace(options, length=int(speech_seconds * rate), prime=0)
        else:
            run_options = replace(options, length=music_frames)
        run_options = replace(run_options, prefix=summary.unit)
        if references is None:
            run_options = replace(run_options, prime=0, references=0)
        files = write_samples(run, out_dir / summary.dataset, run_options, references)
        results.append((summary, files))
    return results


def _shown(folder: Path) -> str:
    """The run folder relative to the working directory when inside it (no home paths)."""
    try:
        return folder.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return folder.as_posix()


def index_markdown(results: list[tuple[RunSummary, list[Path]]], out_dir: Path, note: str) -> str:
    """The README.md of the gallery: one row per sampled run, links relative to ``out_dir``."""
    lines = [
        "# Samples from the best runs",
        "",
        note,
        "",
        "| data set | unit | valid NLL | test NLL | seed | lr | files | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for summary, files in results:
        links = " ".join(f"[{p.name}]({p.relative_to(out_dir).as_posix()})" for p in files)
        test = "-" if summary.test_nll is None else f"{summary.test_nll:.3f}"
        lr = "-" if summary.lr is None else f"{summary.lr:.3g}"
        lines.append(
            f"| {summary.dataset} | {summary.unit} | {summary.valid_nll:.3f} | {test} | "
            f"{summary.seed} | {lr} | {links} | `{_shown(summary.folder)}` |"
        )
    return "\n".join(lines) + "\n"
