"""The plain files a run leaves in its folder: metrics.json and curves.csv (both written
atomically), and TensorBoard hparams in the run's own event file."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from gru_repro.atomic import atomic_write_text
from gru_repro.run_format import CURVE_COLUMNS, CURVES_FILE, FINAL_STATUSES, METRICS_FILE

__all__ = [
    "CURVES_FILE",
    "CURVE_COLUMNS",
    "FINAL_STATUSES",
    "METRICS_FILE",
    "is_finished",
    "log_hparams",
    "read_metrics",
    "write_curves",
    "write_metrics",
]


def _json_safe(value):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(run_dir: str | Path, metrics: dict) -> None:
    text = json.dumps({k: _json_safe(v) for k, v in metrics.items()}, indent=2, sort_keys=True)
    atomic_write_text(Path(run_dir) / METRICS_FILE, text + "\n", fsync=True)


def read_metrics(run_dir: str | Path) -> dict | None:
    """The run's metrics.json, or None when absent or unreadable (e.g. never finished)."""
    path = Path(run_dir) / METRICS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def is_finished(run_dir: str | Path) -> bool:
    metrics = read_metrics(run_dir)
    return bool(metrics) and metrics.get("status") in FINAL_STATUSES


def saved_identity(run_dir: str | Path) -> dict | None:
    """The identity of the run in ``run_dir`` (metrics.json, else checkpoints/last.pt); None
    for an empty folder or a run from before identities were recorded."""
    metrics = read_metrics(run_dir) or {}
    if "identity" in metrics:
        return metrics["identity"]
    last = Path(run_dir) / "checkpoints" / "last.pt"
    if last.is_file():
        from gru_repro.training.checkpoint import load_checkpoint

        return load_checkpoint(last).get("identity")
    return None


def write_curves(run_dir: str | Path, rows: list[dict]) -> None:
    """Rewrite curves.csv from the full history (so a resumed run has no duplicate rows)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    atomic_write_text(Path(run_dir) / CURVES_FILE, buffer.getvalue(), fsync=True)


def log_hparams(writer: SummaryWriter, hparam_dict: dict, metric_dict: dict, step: int) -> None:
    """Hyperparameters and final metrics into the writer's own run folder.

    ``SummaryWriter.add_hparams`` would open a separate timestamped subfolder; writing the three
    hparams summaries to the same file writer keeps one run = one folder in TensorBoard.
    """
    clean_h = {
        k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparam_dict.items()
    }
    clean_m = {
        k: float(v)
        for k, v in metric_dict.items()
        if isinstance(v, (int, float)) and math.isfinite(v)
    }
    exp, ssi, sei = hparams(clean_h, clean_m)
    file_writer = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        file_writer.add_summary(summary)
    for key, value in clean_m.items():
        writer.add_scalar(key, value, step)
