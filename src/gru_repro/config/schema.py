"""The config schema: one dataclass per config group option, with types, allowed values and
ranges declared once (``configs/**.yaml`` extend these; ``gru_repro.config.store`` registers
them with Hydra's ConfigStore).

Hydra checks types and unknown keys while it composes (``trainer.max_epoch=3``,
``optim.lr=abc``); ``Checked.__post_init__`` checks ranges and choices when the composed
config becomes these dataclasses (``OmegaConf.to_object``), before anything is written. The
library receives the plain objects (or ``dataclasses.asdict`` of them as keyword arguments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from gru_repro.config.checks import Checked, ConfigError, above, at_least, one_of
from gru_repro.data.splits import DataKind
from gru_repro.training.settings import TrainerSettings

MUSIC_SETS = ("nottingham", "jsb", "musedata", "piano_midi")
SPEECH_SETS = ("speech_a", "speech_b")
UNITS = ("tanh", "gru", "lstm")  # gru_repro.models.units
HEADS = ("bernoulli", "gmm")  # gru_repro.models.heads
INITS = ("paper", "torch")
OPTIMIZERS = ("rmsprop", "rmsprop_released")  # gru_repro.training.optim
SCHEDULES = ("constant", "linear")


# --------------------------------------------------------------------------------- data
@dataclass
class DataConfig(Checked):
    """Keys every data set has (``load_splits(name, data_dir=..., mirror=..., **rest)``)."""

    group = "data"
    kind: ClassVar[DataKind] = DataKind.MUSIC  # binary piano rolls; speech: real-valued samples
    name: str = MISSING  # registry name (gru_repro.data.registry.LOADERS)
    data_dir: str = "data"  # fetched files and data/cache/ (run-only: where, not what)
    mirror: str | None = None  # local folder laid out like the data mirror; None = download


@dataclass
class MusicData(DataConfig):
    name: str = field(default=MISSING, metadata=one_of(*MUSIC_SETS))
    source: str = field(default="mat", metadata=one_of("mat", "pickle"))
    pitch_low: int = field(default=21, metadata=at_least(0))
    pitch_high: int = field(default=108, metadata=at_least(0))


@dataclass
class MidiFolderData(DataConfig):
    name: str = field(default="midi_folder", metadata=one_of("midi_folder"))
    path: str = MISSING  # folder holding train/, valid/, test/
    frame_rate: float = field(default=8.0, metadata=above(0, "frames per second"))
    pitch_low: int = field(default=21, metadata=at_least(0))
    pitch_high: int = field(default=108, metadata=at_least(0))
    allow_skipping: bool = False


@dataclass
class SyntheticData(DataConfig):
    name: str = field(default="synthetic", metadata=one_of("synthetic"))
    seed: int = 0
    n_train: int = field(default=64, metadata=at_least(1))
    n_valid: int = field(default=16, metadata=at_least(1))
    n_test: int = field(default=16, metadata=at_least(1))
    min_length: int = field(default=16, metadata=at_least(2))
    max_length: int = field(default=48, metadata=at_least(2))
    n_patterns: int = field(default=4, metadata=at_least(1))
    cycle_length: int = field(default=4, metadata=at_least(1))
    notes_per_chord: int = field(default=3, metadata=at_least(1))
    noise: float = field(default=0.01, metadata=at_least(0))
    pitch_low: int = field(default=60, metadata=at_least(0))
    pitch_high: int = field(default=83, metadata=at_least(0))


@dataclass
class AudioFraming(DataConfig):
    """Keys shared by the speech sets and audio folders (samples and steps)."""

    kind: ClassVar[DataKind] = DataKind.SPEECH

    sample_rate: int = field(default=8000, metadata=at_least(1))
    sequence_length: int = field(default=8000, metadata=at_least(1))
    segment_stride: int | None = field(default=None, metadata=at_least(1))
    input_window: int = field(default=20, metadata=at_least(1))
    target_window: int = field(default=10, metadata=at_least(1))
    hop: int = field(default=10, metadata=at_least(1))
    max_sequences: int | None = field(default=None, metadata=at_least(1))
    max_eval_sequences: int | None = field(default=None, metadata=at_least(1))
    subset_seed: int = 0


@dataclass
class SpeechData(AudioFraming):
    name: str = field(default=MISSING, metadata=one_of(*SPEECH_SETS))
    join_speaker: bool = False
    test_indices: list[int] = field(default_factory=lambda: [0, 5])
    valid_indices: list[int] = field(default_factory=lambda: [5, 10])


@dataclass
class AudioFolderData(AudioFraming):
    name: str = field(default="audio_folder", metadata=one_of("audio_folder"))
    path: str = MISSING  # folder of .wav/.flac files
    valid_fraction: float = field(default=0.1, metadata=at_least(0))
    test_fraction: float = field(default=0.1, metadata=at_least(0))
    allow_skipping: bool = False


# --------------------------------------------------------------------------------- model
@dataclass
class ModelConfig(Checked):
    """``build_model(**asdict(model), input_size=..., output_size=...)``."""

    group = "model"
    unit: str = field(default=MISSING, metadata=one_of(*UNITS))
    hidden_size: int | None = field(default=None, metadata=at_least(1))
    budget: int | None = field(default=None, metadata=at_least(1))
    init: str = field(default="paper", metadata=one_of(*INITS))
    head: str = field(default="bernoulli", metadata=one_of(*HEADS))
    head_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.hidden_size is None) == (self.budget is None):
            raise ConfigError(
                f"set exactly one of model.hidden_size and model.budget (got hidden_size="
                f"{self.hidden_size!r}, budget={self.budget!r}); set the other to null"
            )


@dataclass
class GRUModel(ModelConfig):
    unit: str = field(default="gru", metadata=one_of("gru"))
    reset_after: bool = False  # false = the paper's form; true = torch.nn.GRU's


@dataclass
class LSTMModel(ModelConfig):
    unit: str = field(default="lstm", metadata=one_of("lstm"))
    peephole: bool = True  # the paper's diagonal peepholes


@dataclass
class TanhModel(ModelConfig):
    unit: str = field(default="tanh", metadata=one_of("tanh"))


# --------------------------------------------------------------------------------- optim
@dataclass
class OptimConfig(Checked):
    """``build_optimization(params, asdict(optim), total_updates=...)`` (training/optim.py)."""

    group = "optim"
    name: str = field(default=MISSING, metadata=one_of(*OPTIMIZERS))
    lr: float = field(default=1e-3, metadata=above(0, "the paper searches 6.1e-6 .. 2.5e-3"))
    schedule: str = field(default="constant", metadata=one_of(*SCHEDULES))
    # lr at the end of the budget / lr, for schedule=linear; no effect on a constant schedule
    # (plain RMSProp's 1.0 stays in its config: committed runs' identities include it)
    final_lr_fraction: float = field(default=1.0, metadata=above(0))


@dataclass
class RMSpropConfig(OptimConfig):
    name: str = field(default="rmsprop", metadata=one_of("rmsprop"))
    alpha: float = field(default=0.95, metadata=above(0))
    eps: float = field(default=1e-6, metadata=above(0))
    momentum: float = field(default=0.0, metadata=at_least(0))
    centered: bool = False
    weight_decay: float = field(default=0.0, metadata=at_least(0))


@dataclass
class ReleasedRMSpropConfig(OptimConfig):
    name: str = field(default="rmsprop_released", metadata=one_of("rmsprop_released"))
    decay: float = field(default=0.95, metadata=above(0))
    momentum: float = field(default=0.9, metadata=at_least(0))
    rms_floor: float = field(default=0.01, metadata=above(0))
    # the applied update scaled to this L2 norm over all parameters when larger (the released
    # code's momentum_clipping with bound_inc false); None = no cap
    max_update_norm: float | None = field(default=None, metadata=above(0, "null = no cap"))


# The output layer each kind of data needs: one sigmoid per note for binary piano rolls, the
# paper's Gaussian mixture for real-valued audio samples.
HEAD_FOR_KIND = {DataKind.MUSIC: "bernoulli", DataKind.SPEECH: "gmm"}


# --------------------------------------------------------------------------------- root
@dataclass
class PathsConfig:
    """Where things are on this machine: run-only keys, never part of a run's identity."""

    data_dir: str = "data"
    data_mirror: str | None = None
    output_root: str = "outputs"
    run_group: str | None = None  # folder below output_root; None = the data set's name


@dataclass
class TrainConfig:
    """The root of ``configs/train.yaml``: the groups are typed by their options' schemas."""

    data: Any = MISSING
    model: Any = MISSING
    optim: Any = MISSING
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    seed: int = 1
    paths: PathsConfig = field(default_factory=PathsConfig)

    def __post_init__(self) -> None:
        kind = getattr(self.data, "kind", None)
        head = getattr(self.model, "head", None)
        if kind in HEAD_FOR_KIND and head != HEAD_FOR_KIND[kind]:
            raise ConfigError(
                f"model.head={head} does not fit data={self.data.name}: {kind} data needs "
                f"model.head={HEAD_FOR_KIND[kind]}; drop the model.head override (the data "
                "config chooses the head)"
            )


# group -> {schema name: class}; configs/<group>/<option>.yaml names one in its defaults
SCHEMAS: dict[str, dict[str, type]] = {
    "data": {
        "music": MusicData,
        "midi_folder": MidiFolderData,
        "synthetic": SyntheticData,
        "speech": SpeechData,
        "audio_folder": AudioFolderData,
    },
    "model": {"gru": GRUModel, "lstm": LSTMModel, "tanh": TanhModel},
    "optim": {"rmsprop": RMSpropConfig, "rmsprop_released": ReleasedRMSpropConfig},
    "trainer": {"trainer": TrainerSettings},
}
