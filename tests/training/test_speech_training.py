"""A short real run per unit on speech_a beats the best single Gaussian fitted to train.

The baseline is the maximum-likelihood full-covariance Gaussian over the 10 target samples of a
step, fitted to all training steps (the best any single Gaussian can do, ignoring the input);
both NLLs are in nats per step on the validation subset, frame-weighted. Models are small
(hidden 24) and the data a seeded subset, so each run takes seconds on one core.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from gru_repro.data.registry import load_splits
from gru_repro.data.speech_fsdd import load_fsdd_waveforms
from gru_repro.training import Trainer, TrainerSettings

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def small_speech_a(data_mirror: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("fsdd_train")
    load_fsdd_waveforms(data_dir, data_mirror)
    return load_splits(
        "speech_a", data_dir=data_dir, mirror=data_mirror, max_sequences=96, max_eval_sequences=48
    )


def gaussian_baseline_nll(splits) -> float:
    """Valid NLL (nats/step) of the ML full-covariance Gaussian fitted to train targets."""
    train = torch.cat([y for _, y in splits.train]).double()  # (N, 10)
    valid = torch.cat([y for _, y in splits.valid]).double()
    mean = train.mean(0)
    cov = torch.cov(train.T, correction=0)
    gaussian = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    return float(-gaussian.log_prob(valid).mean())


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_short_run_beats_single_gaussian(
    unit: str, small_speech_a, tmp_path: Path, report_result
) -> None:
    splits = small_speech_a
    baseline = gaussian_baseline_nll(splits)
    diagonal = float(
        torch.distributions.Normal(0.0, 1.0).entropy() * 10
    )  # unit Gaussian on the normalised waveform, for scale
    trainer = Trainer(
        splits,
        run_dir=tmp_path,
        seed=1,
        model_options={"unit": unit, "hidden_size": 24, "head": "gmm"},
        optim_options={"name": "rmsprop", "lr": 3e-3},
        settings=TrainerSettings(
            batch_size=8, max_epochs=12, patience=0, weight_noise=0.0, eval_batch_size=96
        ),  # 12 epochs x 12 updates = 144 updates
    )
    metrics = trainer.fit()
    message = (
        f"speech_a {unit}: valid NLL {metrics['valid_nll']:.3f} nats/step after "
        f"{metrics['updates']} updates vs best single Gaussian {baseline:.3f} "
        f"(unit diagonal Gaussian {diagonal:.3f})"
    )
    log.info(message)
    report_result(message)
    assert np.isfinite(metrics["valid_nll"])
    assert metrics["valid_nll"] < baseline
