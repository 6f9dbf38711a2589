"""Training as in the paper: RMSProp, weight noise, clipping, early stopping, checkpoints.

    from gru_repro.training import Trainer, TrainerSettings
    metrics = Trainer(splits, run_dir=..., seed=1, model_options=..., optim_options=...,
                      settings=TrainerSettings()).fit()

`Trainer` is imported lazily so that the light pieces (optim, weight noise, metrics) do not
pull in the data and model packages.
"""

from gru_repro.training.early_stopping import EarlyStopping
from gru_repro.training.metrics import NLL_CONVENTION, NLLTotals, evaluate
from gru_repro.training.optim import (
    FlooredRMSprop,
    build_optimization,
    build_optimizer,
    build_scheduler,
)
from gru_repro.training.settings import TrainerSettings
from gru_repro.training.weight_noise import WeightNoise, noisy_parameter_names, noisy_weights

__all__ = [
    "NLL_CONVENTION",
    "EarlyStopping",
    "FlooredRMSprop",
    "NLLTotals",
    "Trainer",
    "TrainerSettings",
    "WeightNoise",
    "build_optimization",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "noisy_parameter_names",
    "noisy_weights",
]


def __getattr__(name: str):
    if name == "Trainer":
        from gru_repro.training.loop import Trainer

        return Trainer
    raise AttributeError(name)
