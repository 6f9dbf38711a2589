"""Plain typed settings for a training run (the Hydra entry point fills them from the config)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class TrainerSettings:
    """See configs/trainer/default.yaml for the reason behind each default."""

    batch_size: int = 8  # sequences per update
    eval_batch_size: int = 64  # sequences per evaluation batch (does not change the metric)
    max_epochs: int = 200  # epoch budget (also the length of the linear LR decay)
    patience: int = 20  # evaluations without a valid improvement before stopping; 0 = never
    min_delta: float = 0.0  # nats; smaller valid improvements do not count
    eval_every: int = 1  # epochs between validation passes (and early-stopping checks)
    eval_train: bool = False  # clean train-set pass per epoch instead of the running mean
    clip_grad_norm: float = 1.0  # rescale the gradient to this norm when larger (paper: 1)
    weight_noise: float = 0.075  # std of Gaussian weight noise (paper: 0.075); 0 = off
    weight_noise_head: bool = False  # also perturb the output layer's weight matrices
    eval_with_noise: bool = False  # evaluate with weight noise, as the released code did
    diverge_factor: float = 10.0  # diverged above initial + (this - 1) x |initial| (valid NLL)
    bucket: bool = True  # group sequences of similar length into batches
    log_every: int = 1  # updates between train/grad_norm and train/lr scalars
    sample_every: int = 0  # epochs between TensorBoard samples; 0 = off
    resume: bool = True  # continue from checkpoints/last.pt when the run folder has one
    force: bool = False  # train again even when metrics.json says the run finished
    progress: bool = False  # tqdm bar per epoch (the entry point enables it on a terminal)
    device: str = "cpu"

    def __post_init__(self) -> None:
        checks = {  # name: (holds, what a valid value is)
            "batch_size": (self.batch_size >= 1, "an integer >= 1"),
            "eval_batch_size": (self.eval_batch_size >= 1, "an integer >= 1"),
            "max_epochs": (self.max_epochs >= 0, "an integer >= 0"),
            "patience": (self.patience >= 0, "an integer >= 0 (0 never stops early)"),
            "eval_every": (self.eval_every >= 1, "an integer >= 1 (epochs)"),
            "clip_grad_norm": (self.clip_grad_norm > 0, "> 0"),
            "weight_noise": (self.weight_noise >= 0, ">= 0 (0 turns weight noise off)"),
            "diverge_factor": (self.diverge_factor > 1, "> 1"),
            "log_every": (self.log_every >= 1, "an integer >= 1 (updates)"),
            "sample_every": (self.sample_every >= 0, "an integer >= 0 (epochs; 0 = off)"),
            "min_delta": (self.min_delta >= 0, ">= 0 (nats)"),
        }
        for name, (ok, valid) in checks.items():
            if not ok:
                raise ValueError(f"trainer.{name}={getattr(self, name)!r} must be {valid}")

    @classmethod
    def from_dict(cls, options: dict) -> TrainerSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown trainer option(s) {', '.join(unknown)}: valid ones are "
                f"{', '.join(sorted(known))}"
            )
        return cls(**options)
