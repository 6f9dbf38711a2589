"""Plain typed settings for a training run: the schema of the ``trainer`` config group.

See configs/trainer/default.yaml for the reason behind each default. Ranges are declared here
once (``gru_repro.config.checks``); Hydra checks the types while composing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from gru_repro.config.checks import Checked, ConfigError, above, at_least, one_of


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
    clip_grad_norm: float = field(default=1.0, metadata=above(0))  # paper: 1
    weight_noise: float = field(default=0.075, metadata=at_least(0, "0 turns it off"))
    weight_noise_head: bool = False  # also perturb the output layer's weight matrices
    eval_with_noise: bool = False  # evaluate with weight noise, as the released code did
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
    # float32 populations: false = the whole-sequence products batched over the members (one
    # bmm; each member its single run within float32 rounding, faster); true = per member (bit
    # for bit its single run). float64 is always exact (models/recurrent.py)
    population_exact: bool = False

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
