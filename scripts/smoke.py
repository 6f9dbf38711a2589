"""`make smoke`: train tanh, GRU and LSTM for a few epochs on JSB Chorales and print their NLLs.

Uses the real entry point's code path (the composed configs/train.yaml and gru_repro.train.run),
real data through DATA_MIRROR (or data/), one thread; about a minute on 2 CPU cores.
Extra Hydra overrides go to every run:  python scripts/smoke.py trainer.max_epochs=5
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from gru_repro.train import CONFIG_DIR, run

UNITS = ("tanh", "gru", "lstm")
OVERRIDES = [
    "data=jsb",
    "optim.lr=2e-3",  # top of the paper's range: visible progress in a few epochs
    "trainer.max_epochs=15",  # epochs (~0.5 s each here); a smoke test, not a result
    "trainer.force=true",  # always train again
    "trainer.progress=false",
]


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    root = Path("outputs") / "smoke"
    rows = []
    for unit in UNITS:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=[f"model={unit}", *OVERRIDES, *argv])
        start = time.perf_counter()
        metrics = run(cfg, root / unit)
        rows.append((unit, metrics, time.perf_counter() - start))
        print(
            f"{unit:5s} done in {rows[-1][2]:5.1f}s: valid NLL {metrics['valid_nll']:.3f}",
            flush=True,
        )
    print(
        f"\nJSB Chorales, {cfg.trainer.max_epochs} epochs, lr {cfg.optim.lr}, "
        "NLL in nats per predicted frame (frame-weighted, sum over 88 notes)"
    )
    print(
        f"{'unit':5s} {'hidden':>6s} {'params':>7s} {'train':>7s} {'valid':>7s} {'test':>7s}"
        f" {'status':>10s} {'seconds':>8s}"
    )
    for unit, m, seconds in rows:
        print(
            f"{unit:5s} {m['hidden_size']:6d} {m['n_params_recurrent']:7d} {m['train_nll']:7.3f}"
            f" {m['valid_nll']:7.3f} {m['test_nll']:7.3f} {m['status']:>10s} {seconds:8.1f}"
        )
    print(
        f"(untrained: 88 x ln 2 = {88 * 0.6931:.1f}; paper's test after full training: "
        "tanh 9.10, GRU 8.54, LSTM 8.67)"
    )
    return 0 if all(m["status"] != "diverged" for _, m, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
