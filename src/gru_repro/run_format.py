"""The format of a run folder, shared by training (writes it) and the reports (read it).

Plain constants only, so that importing them pulls in neither torch nor matplotlib.
"""

from __future__ import annotations

METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.csv"
# one row per epoch (and epoch 0, the untrained model); valid_nll is empty on epochs without
# validation (trainer.eval_every > 1)
CURVE_COLUMNS = ("epoch", "updates", "wall_seconds", "train_nll", "valid_nll")
# the validation NLL at noisy weights, after CURVE_COLUMNS in runs that measure it
# (trainer.noisy_valid or trainer.select_on=noisy); other runs' files have no such column
NOISY_VALID_COLUMN = "valid_nll_noisy"
FINAL_STATUSES = ("completed", "early_stopped", "diverged", "failed")  # train.py never reruns these
