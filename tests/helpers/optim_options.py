"""The optimizer options the training tests build their runs with, as configs/optim/*.yaml and
configs/experiment/released/*.yaml set them (without the learning rate), one table for all."""

from __future__ import annotations

RMSPROP = {  # configs/optim/rmsprop.yaml: plain torch RMSprop
    "name": "rmsprop",
    "alpha": 0.95,
    "eps": 1e-6,
    "momentum": 0.0,
    "centered": False,
    "weight_decay": 0.0,
    "schedule": "constant",
    "final_lr_fraction": 1.0,
}
RMSPROP_RELEASED = {  # configs/optim/rmsprop_released.yaml: FlooredRMSprop, linear decay to 1%
    "name": "rmsprop_released",
    "decay": 0.95,
    "momentum": 0.9,
    "rms_floor": 0.01,
    "schedule": "linear",
    "final_lr_fraction": 0.01,
}
# the released protocol's optimizer (configs/experiment/released/*.yaml): + the update cap
RMSPROP_RELEASED_CAPPED = {**RMSPROP_RELEASED, "max_update_norm": 1.0}
OPTIMS = {
    "rmsprop": RMSPROP,
    "rmsprop_released": RMSPROP_RELEASED,
    "rmsprop_released_capped": RMSPROP_RELEASED_CAPPED,
}
