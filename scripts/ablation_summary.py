"""Write results/ablations/README.md: single runs outside the protocol beside the protocol run
each one varies, read from their committed summaries.

    python scripts/ablation_summary.py            # make ablations

Each ablation is an experiment file, configs/experiment/ablation/<name>.yaml (the protocol
experiment it varies and its changes only), and a run folder under results/ablations/<name>/
(metrics.json, curves.csv, .hydra/) as `python -m gru_repro.train experiment=ablation/<name>`
writes it. ABLATIONS below says which protocol run it is compared with and what question it
asks; the table's numbers come from the metrics.json files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from gru_repro.atomic import atomic_write_text
from gru_repro.reports.collect import read_run
from gru_repro.reports.protocol import SEARCH_SEED, Protocol

REPO_ROOT = Path(__file__).resolve().parents[1]
ABLATIONS_DIR = REPO_ROOT / "results" / "ablations"
RUNS_ROOT = REPO_ROOT / "results" / "runs"
# protocol runs (experiment, unit, lr) of the full protocol, seed 1: the selected rates
NOTTINGHAM_GRU = ("music/nottingham", "gru", 0.00174)
PIANO_MIDI_LSTM = ("music/piano_midi", "lstm", 0.00152)
RELEASED_OPTIM = (  # the question of every released-optimizer ablation below
    "The released code's optimizer (`optim=rmsprop_released`: momentum 0.9, rms floor 0.01, "
    "learning rate decayed linearly to 1% over the 200 epochs) instead of plain RMSProp, at the "
    "protocol run's learning rate"
)
# folder -> (protocol run it varies, the question it asks)
ABLATIONS = {
    "nottingham_gru_600_epochs": (
        NOTTINGHAM_GRU,
        "Is the 200-epoch budget what keeps the GRU above the paper on Nottingham?",
    ),
    "nottingham_gru_lr_0.00248": (
        NOTTINGHAM_GRU,
        "Does a learning rate above the grid help? (0.00248 = exp(-6), the top of the paper's "
        "range)",
    ),
    "nottingham_gru_lr_0.005": (
        NOTTINGHAM_GRU,
        "... and one nearly three times the grid's largest candidate?",
    ),
    "nottingham_gru_batch_1": (
        NOTTINGHAM_GRU,
        "Does the released code's batch size (1 sequence per update) train further?",
    ),
    "nottingham_gru_batch_1_lr_0.005": (
        NOTTINGHAM_GRU,
        "Batch 1 and the larger learning rate together?",
    ),
    "nottingham_gru_released_optim": (NOTTINGHAM_GRU, RELEASED_OPTIM + "?"),
    "nottingham_gru_released_optim_lr_0.000501": (
        ("music/nottingham", "gru", 0.000501),
        RELEASED_OPTIM + ", at a mid-grid rate (0.000501): is the grid's largest rate too "
        "large for it?",
    ),
    "nottingham_gru_linear_decay": (
        NOTTINGHAM_GRU,
        "Plain RMSProp with only the released code's learning-rate decay (linear to 1% over the "
        "200 epochs; no momentum, no rms floor): is the decay what helps?",
    ),
    "nottingham_gru_released_setting": (
        NOTTINGHAM_GRU,
        "The released setting as a whole (`trainer=released optim=rmsprop_released`: batch 1, "
        "500 epochs, patience 50, the decay over 500 epochs), evaluated without weight noise?",
    ),
    "piano_midi_lstm_released_optim": (
        PIANO_MIDI_LSTM,
        RELEASED_OPTIM + ": does the LSTM leave its plateau?",
    ),
    "musedata_tanh_released_optim": (
        ("music/musedata", "tanh", 0.00174),
        RELEASED_OPTIM + "?",
    ),
    "musedata_gru_released_optim": (("music/musedata", "gru", 0.00174), RELEASED_OPTIM + "?"),
    "musedata_lstm_released_optim": (
        ("music/musedata", "lstm", 0.00134),
        RELEASED_OPTIM + "?",
    ),
}
EXPERIMENT_GROUP = "ablation"  # configs/experiment/ablation/<name>.yaml, one per folder here
COLUMNS = ("status", "epochs", "best_epoch", "updates", "train_nll", "valid_nll", "test_nll")


def command(name: str) -> str:
    """The one line that trains ablation ``name`` (configs/experiment/ablation/<name>.yaml)."""
    return f"python -m gru_repro.train experiment={EXPERIMENT_GROUP}/{name}"


def protocol_run(experiment: str, unit: str, lr: float) -> Path:
    """The folder of a full-protocol search run (seed 1) in results/runs."""
    protocol = Protocol.load(RUNS_ROOT, "full")
    plan = next(p for p in protocol.experiments if p.experiment == experiment)
    return plan.run_dir(RUNS_ROOT, unit, lr, SEARCH_SEED)


def overrides(run_dir: Path) -> str:
    """The run's command-line overrides, without where its files went."""
    path = run_dir / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(path.read_text()) if path.is_file() else []
    return " ".join(f"`{item}`" for item in items if not item.startswith("paths."))


def cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "–" if value is None else str(value)


def row(label: str, run_dir: Path) -> str:
    run = read_run(run_dir)
    if run is None:
        raise SystemExit(f"error: {run_dir} has no metrics.json: rerun the run or drop it")
    values = [cell(run.metrics.get(key)) for key in COLUMNS]
    wall = run.metrics.get("wall_seconds")
    values.append("–" if wall is None else f"{wall:.0f} s")
    return f"| {label} | {overrides(run_dir)} | " + " | ".join(values) + " |"


def markdown() -> str:
    lines = [
        "# Ablations",
        "",
        "Written by `scripts/ablation_summary.py` from the run folders here; do not edit by hand.",
        "Single runs outside the protocol, each beside the protocol run it varies (same seed and",
        "everything else). Each is an experiment file, `configs/experiment/ablation/<name>.yaml`",
        "(the protocol experiment and the changes), trained by the one line under its question;",
        "each folder holds the run's `metrics.json`, `curves.csv` and Hydra config (`.hydra/`).",
        "NLL in nats per predicted step (frame-weighted), train/valid/test at the best checkpoint.",
        "",
    ]
    header = "| run | overrides | " + " | ".join(COLUMNS) + " | wall time |"
    for name, (reference, question) in ABLATIONS.items():
        folder = ABLATIONS_DIR / name
        if not folder.is_dir():
            continue
        lines += [
            f"## {name}",
            "",
            question,
            "",
            f"    {command(name)}",
            "",
            header,
            "|" + "---|" * (len(COLUMNS) + 3),
            row("protocol run", protocol_run(*reference)),
            row("ablation", folder),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    out = ABLATIONS_DIR / "README.md"
    atomic_write_text(out, markdown())
    print(f"wrote {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
