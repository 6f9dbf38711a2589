"""Plain typed settings for a training run: the schema of the ``trainer`` config group.

See configs/trainer/default.yaml for the reason behind each default. Ranges are declared here
once (``gru_repro.config.checks``); Hydra checks the types while composing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from gru_repro.config.checks import Checked, ConfigError, above, at_least, one_of

OBJECTIVES = ("mean", "sum")  # trainer.objective: training/metrics.py batch_loss


@dataclass
class TrainerSettings(Checked):
    group = "trainer"

    batch_size: int = field(default=8, metadata=at_least(1))  # sequences per update
    eval_batch_size: int = field(default=64, metadata=at_least(1))  # speed only
    max_epochs: int = field(default=200, metadata=at_least(1))  # also the linear decay's length
    patience: int = field(default=20, metadata=at_least(0, "0 never stops early"))
    min_delta: float = field(default=0.0, metadata=at_least(0, "nats"))
    eval_every: int = field(default=1, metadata=at_least(1, "epochs"))
    eval_train: bool = False  # clean train-set pass per epoch instead of the running mean
    # paper: 1; None = no gradient clipping (the released code's), which also ends the
    # overflow rescue: an overflowing gradient then diverges the run (training/clipping.py)
    clip_grad_norm: float | None = field(default=1.0, metadata=above(0, "null = no clipping"))
    # what the optimizer minimises: the NLL's per-predicted-step mean over the batch, or its
    # sum over the batch's steps and notes (the released code's); metrics keep their convention
    objective: str = field(default="mean", metadata=one_of(*OBJECTIVES))
    weight_noise: float = field(default=0.075, metadata=at_least(0, "0 turns it off"))
    weight_noise_head: bool = False  # also perturb the output layer's weight matrices
    eval_with_noise: bool = False  # every evaluation noisy (one draw per evaluation batch)
    # weight-noise draws in training: one per update, or one per sequence (the released code's;
    # implemented as one per update at batch_size 1, so it needs batch_size 1)
    weight_noise_per: str = field(default="update", metadata=one_of("update", "sequence"))
    # also measure the validation NLL at noisy weights every epoch (one draw per sequence)
    noisy_valid: bool = False
    # the validation NLL that picks the best checkpoint (and drives patience); noisy measures
    # the noisy one every epoch as noisy_valid does
    select_on: str = field(default="clean", metadata=one_of("clean", "noisy"))
    diverge_factor: float = field(default=10.0, metadata=above(1))
    bucket: bool = True  # group sequences of similar length into batches
    log_every: int = field(default=1, metadata=at_least(1, "updates"))
    sample_every: int = field(default=0, metadata=at_least(0, "epochs; 0 = off"))
    resume: bool = True  # continue from checkpoints/last.pt when the run folder has one
    force: bool = False  # train again even when metrics.json says the run finished
    progress: bool | None = None  # tqdm bar per epoch; None = on a terminal outside sweeps
    threads: int = field(default=1, metadata=at_least(1))  # torch CPU threads
    device: str = field(default="cpu", metadata=one_of("cpu", "cuda"))
    # the units' loops over time (gru_repro.models.kernels): speed only, the same numbers up
    # to rounding; auto = $GRU_REPRO_KERNELS, by default C++ where it builds
    backend: str = field(default="auto", metadata=one_of("auto", "cpp", "python"))
    # auto: a multirun trains the lr candidates of one run as one population (keep_going
    # sweeper); the sweeper passes each population's learning rates in population_lrs
    population: str = field(default="off", metadata=one_of("off", "auto"))
    population_lrs: list[float] = field(default_factory=list)
    # at most this many lr candidates per population process (0 = all of them in one): more,
    # smaller populations keep more cores busy (a sweep's parallel jobs) at less saving each
    population_size: int = field(default=0, metadata=at_least(0, "0 = no limit"))
    # float32 populations: false = the whole-sequence products batched over the members (one
    # bmm; each member its single run within float32 rounding, faster); true = per member (bit
    # for bit its single run). float64 is always exact (models/recurrent.py)
    population_exact: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_noise_per == "sequence" and self.batch_size != 1:
            raise ConfigError(
                f"trainer.weight_noise_per=sequence needs trainer.batch_size=1, got "
                f"{self.batch_size}: per-sequence draws inside a batch are not implemented"
            )
        if self.eval_with_noise and self.measures_noisy_valid:
            raise ConfigError(
                "trainer.eval_with_noise=true makes every evaluation noisy: with "
                "trainer.noisy_valid or trainer.select_on=noisy set eval_with_noise=false"
            )
        if self.measures_noisy_valid and self.weight_noise == 0:
            raise ConfigError(
                "trainer.noisy_valid / trainer.select_on=noisy need weight noise: "
                "trainer.weight_noise is 0"
            )

    @property
    def measures_noisy_valid(self) -> bool:
        """Whether each epoch measures the noisy validation NLL beside the clean one."""
        return self.noisy_valid or self.select_on == "noisy"

    @classmethod
    def from_dict(cls, options: dict) -> TrainerSettings:
        """For library users without Hydra: unknown keys are an error naming the valid ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"unknown trainer option(s) {', '.join(unknown)}: valid ones are "
                f"{', '.join(sorted(known))}"
            )
        return cls(**options)
