"""What a reproduction runs: experiments, units, learning-rate candidates, seeds.

A run's folder names its experiment, unit, optimizer, learning rate, seed and identity hash
(configs/train.yaml, gru_repro.config.identity):

    <runs_root>/<experiment>/<unit>/<optim>/lr=<lr>/seed=<seed>-<identity hash>/metrics.json
    e.g. results/runs/music/jsb/gru/rmsprop/lr=0.000262/seed=1-1c0ffee5/

scripts/reproduce.py asks the entry point which folder each planned run trains into
(gru_repro.train.planned_folders) and records them in the plan (`ExperimentPlan.folders`), so
the reports find exactly the runs of this protocol, and no other variant that shares a runs
root. Seed 1 of every candidate is the search run; the
selected learning rate is then retrained with seeds 2..n, and Table 2 averages seeds 1..n.
`scripts/reproduce.py` writes the protocol it ran to `<runs_root>/protocols/<name>.json`, and the
reports read it back to know which runs a complete sweep must contain.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from gru_repro.atomic import atomic_write_text
from gru_repro.reports.lr_candidates import read_lr_grid

UNITS = ("tanh", "gru", "lstm")  # configs/model/*.yaml, Table 1
SEARCH_SEED = 1  # every learning-rate candidate is trained once, with this seed
PROTOCOLS_DIR = "protocols"  # <runs_root>/protocols/<name>.json: one runs root, many protocols


def protocol_path(runs_root: str | Path, name: str) -> Path:
    """Where scripts/reproduce.py records protocol ``name`` for the runs in ``runs_root``."""
    return Path(runs_root) / PROTOCOLS_DIR / f"{name}.json"


def reproduce_log_path(runs_root: str | Path, name: str) -> Path:
    """Commands, machine and wall time of the reproduce.py invocations of protocol ``name``."""
    return Path(runs_root) / PROTOCOLS_DIR / f"{name}.reproduce.json"


def protocol_names(runs_root: str | Path) -> list[str]:
    folder = Path(runs_root) / PROTOCOLS_DIR
    return sorted(p.stem for p in folder.glob("*.json") if not p.stem.endswith(".reproduce"))


# experiment name -> Table 2 / Figure 3 label and the data config it uses
EXPERIMENTS = {
    "music/nottingham": "Nottingham",
    "music/jsb": "JSB Chorales",
    "music/musedata": "MuseData",
    "music/piano_midi": "Piano-midi",
    "speech/a": "Speech A",
    "speech/b": "Speech B",
}


def lr_dirname(lr: float) -> str:
    """`lr=<lr>` exactly as Hydra interpolates `${optim.lr}` (Python's repr of the float)."""
    return f"lr={float(lr)!r}"


def run_dir(runs_root: str | Path, experiment: str, unit: str, lr: float, seed: int) -> Path:
    """The folder of a run of a plan that records no folders (a plan written by hand, as the
    tests' fake sweeps are, or before run identities): <experiment>/<unit>/lr=<lr>/seed=<seed>."""
    return Path(runs_root) / experiment / run_key(unit, lr, seed)


def run_key(unit: str, lr: float, seed: int) -> str:
    """Key of ``ExperimentPlan.folders`` (JSON needs strings)."""
    return f"{unit}/{lr_dirname(lr)}/seed={seed}"


@dataclass(frozen=True)
class ExperimentPlan:
    """One experiment's grid: the search is units x lrs at SEARCH_SEED, then `seeds` at the
    selected lr; `overrides` are extra Hydra overrides (the quick protocol's caps)."""

    experiment: str
    units: tuple[str, ...] = UNITS
    lrs: tuple[float, ...] = ()
    seeds: tuple[int, ...] = (1, 2, 3)
    overrides: tuple[str, ...] = ()
    folders: dict[str, str] = field(default_factory=dict)  # run_key -> folder below the root

    def __post_init__(self) -> None:
        if not self.lrs:
            raise ValueError(f"experiment {self.experiment}: no learning-rate candidates")
        if SEARCH_SEED not in self.seeds:
            raise ValueError(
                f"experiment {self.experiment}: seeds {self.seeds} must include the search "
                f"seed {SEARCH_SEED} (the search run counts as the first seed)"
            )

    @property
    def label(self) -> str:
        return EXPERIMENTS.get(self.experiment, self.experiment)

    def search_runs(self) -> list[tuple[str, float, int]]:
        return [(u, lr, SEARCH_SEED) for u in self.units for lr in self.lrs]

    def seed_runs(self, unit: str, lr: float) -> list[tuple[str, float, int]]:
        return [(unit, lr, s) for s in self.seeds]

    def all_runs(self) -> list[tuple[str, float, int]]:
        """Every (unit, lr, seed) the plan may train: the seeds wait for the selection."""
        return [(u, lr, s) for u in self.units for lr in self.lrs for s in self.seeds]

    def run_dir(self, runs_root: str | Path, unit: str, lr: float, seed: int) -> Path:
        """The folder of one planned run (``run_dir`` when the plan records no folders)."""
        key = run_key(unit, lr, seed)
        if not self.folders:
            return run_dir(runs_root, self.experiment, unit, lr, seed)
        if key not in self.folders:
            raise KeyError(f"{self.experiment}: run {key} is not in the protocol")
        return Path(runs_root) / self.folders[key]

    def with_folders(self, folder_of: Callable[[ExperimentPlan], dict]) -> ExperimentPlan:
        """This plan with ``folders`` from ``folder_of(plan)``: {(unit, lr, seed): folder}."""
        found = folder_of(self)
        folders = {run_key(*run): found[run] for run in self.all_runs()}
        return dataclasses.replace(self, folders=folders)


@dataclass(frozen=True)
class Protocol:
    name: str  # "full" or "quick"
    experiments: tuple[ExperimentPlan, ...]
    description: str = ""

    def with_folders(self, folder_of: Callable[[ExperimentPlan], dict]) -> Protocol:
        plans = tuple(plan.with_folders(folder_of) for plan in self.experiments)
        return dataclasses.replace(self, experiments=plans)

    def save(self, runs_root: str | Path) -> Path:
        text = json.dumps(asdict(self), indent=2) + "\n"
        return atomic_write_text(protocol_path(runs_root, self.name), text)

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> Protocol:
        """A protocol file, or protocol ``name`` of a runs root (the only one when None)."""
        path = Path(path)
        if path.is_dir():
            names = protocol_names(path)
            if name is None and len(names) != 1:
                found = f"protocols {', '.join(names)}" if names else "no protocol"
                raise FileNotFoundError(
                    f"{path / PROTOCOLS_DIR}: {found}; name one (--protocol NAME), or run "
                    "scripts/reproduce.py first"
                )
            path = protocol_path(path, name or names[0])
        try:
            raw = json.loads(path.read_text())
            plans = tuple(
                ExperimentPlan(
                    experiment=p["experiment"],
                    units=tuple(p["units"]),
                    lrs=tuple(float(x) for x in p["lrs"]),
                    seeds=tuple(int(s) for s in p["seeds"]),
                    overrides=tuple(p.get("overrides", ())),
                    folders=dict(p.get("folders", {})),
                )
                for p in raw["experiments"]
            )
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{path} not found: run scripts/reproduce.py first, or pass --protocol full|quick"
            ) from err
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a protocol file ({err}); delete it and rerun") from err
        return cls(raw["name"], plans, raw.get("description", ""))


# The speech experiments' data in the full protocol. On the whole of FSDD a speech epoch takes
# 0.5-0.8 min on one core (docs/speech.md), so the paper's search (30 runs of up to 200 epochs,
# plus seeds) is weeks of CPU per setting; "subset" trains the same search on the documented
# reduced CPU sizes (a seeded tenth of the data, ~1.5-3 s per epoch on a free core) with an
# epoch budget of 100 (speech A: 75 updates per epoch, 7,500 in all), "whole" on everything
# with the default budget (for a GPU or a cluster). Normalisation uses all training recordings
# either way.
SPEECH_DATA = {
    "subset": {
        "speech/a": (
            "data.max_sequences=600",
            "data.max_eval_sequences=200",
            "trainer.max_epochs=100",
        ),
        "speech/b": (
            "data.max_sequences=64",
            "data.max_eval_sequences=24",
            "trainer.max_epochs=100",
        ),
    },
    "whole": {},
}


# The optimizer of the full protocol. "paper" is what the paper states: plain RMSProp
# (configs/optim/rmsprop.yaml, the configs' default). "released" is the first author's released
# optimizer (configs/optim/rmsprop_released.yaml: momentum 0.9, rms floor 0.01, learning rate
# decayed linearly to 1% over the epoch budget), which the paper's learning-rate range seems to
# have been chosen for: with plain RMSProp nearly every music cell selects the grid's largest
# candidate (results/lr_search.md). The released variant runs the four music sets only (speech
# is compared between units, not with the paper's numbers); its run folders name the optimizer,
# so both variants share one runs root.
class OptimizerVariant(NamedTuple):
    protocol_name: str  # Protocol.name, so reports never pass one variant off as the other
    experiments: tuple[str, ...]  # the experiments it runs
    overrides: tuple[str, ...]  # Hydra overrides added to every run
    note: str  # what the protocol's description says of it; "" = the configs' default


MUSIC_EXPERIMENTS = tuple(name for name in EXPERIMENTS if name.startswith("music/"))
OPTIMIZERS = {
    "paper": OptimizerVariant("full", tuple(EXPERIMENTS), (), ""),
    "released": OptimizerVariant(
        "full-released-optim",
        MUSIC_EXPERIMENTS,
        ("optim=rmsprop_released",),
        "the released code's optimizer (`optim=rmsprop_released`: RMSProp with momentum 0.9, "
        "rms floor 0.01, learning rate decayed linearly to 1% over the epoch budget)",
    ),
}


def full_protocol(
    config_dir: str | Path, n_seeds: int = 3, speech: str = "subset", optim: str = "paper"
) -> Protocol:
    """The paper's protocol: all 6 experiments, 3 units, the 10 candidates in each config.

    `speech` picks the speech experiments' data: "subset" (default, CPU-sized) or "whole".
    `optim` picks the optimizer (OPTIMIZERS): "paper" (plain RMSProp, all 6 experiments) or
    "released" (the released code's RMSProp with momentum and decay, the 4 music sets).
    """
    if speech not in SPEECH_DATA:
        raise ValueError(f"speech data {speech!r}: choose one of {', '.join(SPEECH_DATA)}")
    if optim not in OPTIMIZERS:
        raise ValueError(f"optimizer {optim!r}: choose one of {', '.join(OPTIMIZERS)}")
    variant = OPTIMIZERS[optim]
    plans = tuple(
        ExperimentPlan(
            experiment=name,
            lrs=tuple(read_lr_grid(Path(config_dir) / f"{name}.yaml")),
            seeds=tuple(range(1, n_seeds + 1)),
            overrides=SPEECH_DATA[speech].get(name, ()) + variant.overrides,
        )
        for name in variant.experiments
    )
    with_speech = set(variant.experiments) != set(MUSIC_EXPERIMENTS)
    notes = [
        f"10 learning-rate candidates x 3 units per {'' if with_speech else 'music '}data set "
        f"with early stopping (seed 1), then the selected rate retrained with seeds 2..{n_seeds}"
    ]
    if with_speech:
        notes.append(
            "speech on the reduced CPU subsets (speech A: 600 train / 200 valid and test "
            "segments; speech B: 64 / 24 sequences) with an epoch budget of 100"
            if speech == "subset"
            else "speech on all of FSDD"
        )
    if variant.note:
        notes.append(variant.note)
    return Protocol(variant.protocol_name, plans, "; ".join(notes))


# The quick protocol: real data, reduced so that the whole pipeline (search, selection, seeds,
# reports) finishes in about 15 minutes on 2 CPU cores. Same kinds of tables and plots; the
# numbers are far from converged and are not the reproduction's results.
QUICK_LR_INDICES = (5, 7, 9)  # 3 of the 10 sorted candidates: 5.0e-4, 1.3e-3, 1.7e-3 (short
#                               runs only move with the larger rates)
QUICK_SEEDS = (1, 2)  # the search run + one rerun: enough for a std, not a good one
QUICK_EXPERIMENTS = {
    # Measured on 2 shared cores, 2 runs in parallel: a JSB epoch ~0.5 s, Nottingham ~4 s,
    # speech A (600 segments) ~1.5 s, plus ~10 s of start-up per run: 36 runs, 9 minutes measured.
    # JSB: the smallest music set (229 chorales), whole; 60 epochs, never stopped early.
    "music/jsb": ("trainer.max_epochs=60", "trainer.patience=0"),
    # Nottingham (Figure 3 column 1), whole; 16 epochs.
    "music/nottingham": ("trainer.max_epochs=16", "trainer.patience=0"),
    # Speech A on FSDD, a seeded subset of 600 training / 200 valid and test segments (the
    # reduced CPU sizes of configs/data/speech_a.yaml); 20 epochs.
    "speech/a": (
        "trainer.max_epochs=20",
        "trainer.patience=0",
        "data.max_sequences=600",
        "data.max_eval_sequences=200",
    ),
}


def quick_protocol(config_dir: str | Path) -> Protocol:
    plans = []
    for name, overrides in QUICK_EXPERIMENTS.items():
        grid = read_lr_grid(Path(config_dir) / f"{name}.yaml")
        plans.append(
            ExperimentPlan(
                experiment=name,
                lrs=tuple(grid[i] for i in QUICK_LR_INDICES),
                seeds=QUICK_SEEDS,
                overrides=overrides,
            )
        )
    return Protocol(
        "quick",
        tuple(plans),
        f"reduced: {', '.join(QUICK_EXPERIMENTS)}; {len(QUICK_LR_INDICES)} of the 10 "
        f"candidates; seeds {QUICK_SEEDS}; a few epochs, no early stopping (docs/reproduce.md)",
    )
