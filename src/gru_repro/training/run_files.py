"""The plain files a run leaves in its folder: metrics.json and curves.csv (both written
atomically), and TensorBoard hparams in the run's own event file."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
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
    """NaN/inf are not JSON: write them as null (in nested dicts too)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
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


def write_curves(
    run_dir: str | Path, rows: list[dict], columns: tuple[str, ...] = CURVE_COLUMNS
) -> None:
    """Rewrite curves.csv from the full history (so a resumed run has no duplicate rows);
    ``columns``: CURVE_COLUMNS, plus NOISY_VALID_COLUMN in runs that measure it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    atomic_write_text(Path(run_dir) / CURVES_FILE, buffer.getvalue(), fsync=True)


# Hparams a sweep varies (run folders are <experiment>/<unit>/lr=<lr>/seed=<seed>): listed first.
LEADING_HPARAMS = ("unit", "lr", "seed")
# Group of the final NLLs (at the best checkpoint) among the scalars: TensorBoard's Time Series
# sorts groups by name and opens the first two, so their single points sort after the curves
# (<dataset>/, train/, valid/).
FINAL_TAG_GROUP = "with_best_weights"


def _lead_with(experiment_summary, leading: tuple[str, ...]) -> None:
    """Mark `leading` hparams as differing between sessions, in place. TensorBoard's hparams
    dashboard lists hparams with `differs` first, then by name, and shows the first five; torch's
    hparams() never sets it, which would show batch_size, dataset, device, eval_every, ..."""
    value = experiment_summary.value[0]
    data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in leading
    value.metadata.plugin_data.content = data.SerializeToString()


def log_hparams(writer: SummaryWriter, hparam_dict: dict, final_metrics: dict, step: int) -> None:
    """Hyperparameters and final metrics into the writer's own run folder.

    ``final_metrics`` (``{"test_nll": ...}``, measured at the best checkpoint) become scalars
    ``with_best_weights/<key>`` at ``step`` and the hparams dashboard's metrics; the hparams
    begin with LEADING_HPARAMS. ``SummaryWriter.add_hparams`` would open a separate timestamped
    subfolder; writing the three hparams summaries to the same file writer keeps one run = one
    folder in TensorBoard.
    """
    ordered = {k: hparam_dict[k] for k in LEADING_HPARAMS if k in hparam_dict} | hparam_dict
    clean_h = {
        k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in ordered.items()
    }
    clean_m = {
        f"{FINAL_TAG_GROUP}/{k}": float(v)
        for k, v in final_metrics.items()
        if isinstance(v, (int, float)) and math.isfinite(v)
    }
    exp, ssi, sei = hparams(clean_h, clean_m)
    _lead_with(exp, LEADING_HPARAMS)
    file_writer = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        file_writer.add_summary(summary)
    for key, value in clean_m.items():
        writer.add_scalar(key, value, step)
