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

Every variant is a file of configs/experiment/ (`# @package _global_`, changes only): a plan
names the file that trains it (`ExperimentPlan.config`), and the file's sweep (configs/search/)
gives its units and learning-rate candidates, so each published number has a one-line command,
`python -m gru_repro.train -m experiment=<config>`. Protocol files written before the variants
had files name the base experiment and Hydra overrides instead (`ExperimentPlan.overrides`);
they load and plan the same runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from gru_repro.atomic import atomic_write_text

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


# experiment (the folder group of its runs, paths.run_group) -> Table 2 / Figure 3 label
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
    selected lr.

    `experiment` is the folder group its runs go to (paths.run_group) and, unless `reports_as`
    names another, what the reports show (an EXPERIMENTS key: Table 2 row and paper numbers,
    Figure 3 panel); `config` the configs/experiment/ file that trains them (default:
    `experiment` itself; e.g. speech/a_subset for speech/a); `overrides` further Hydra
    overrides, as protocol files written before the variants had files record them."""

    experiment: str
    config: str = ""  # configs/experiment/<config>.yaml; "" = <experiment>.yaml
    units: tuple[str, ...] = UNITS
    lrs: tuple[float, ...] = ()
    seeds: tuple[int, ...] = (1, 2, 3)
    overrides: tuple[str, ...] = ()
    folders: dict[str, str] = field(default_factory=dict)  # run_key -> folder below the root
    reports_as: str = ""  # the EXPERIMENTS key its rows report as; "" = `experiment`

    def __post_init__(self) -> None:
        if not self.config:  # frozen: set once, here
            object.__setattr__(self, "config", self.experiment)
        if not self.reports_as:
            object.__setattr__(self, "reports_as", self.experiment)
        if not self.lrs:
            raise ValueError(f"experiment {self.experiment}: no learning-rate candidates")
        if SEARCH_SEED not in self.seeds:
            raise ValueError(
                f"experiment {self.experiment}: seeds {self.seeds} must include the search "
                f"seed {SEARCH_SEED} (the search run counts as the first seed)"
            )

    @property
    def label(self) -> str:
        return EXPERIMENTS.get(self.reports_as, self.reports_as)

    @property
    def command(self) -> tuple[str, ...]:
        """The Hydra overrides that train this plan's runs, before unit, lr and seed."""
        return (f"experiment={self.config}", *self.overrides)

    @property
    def changes(self) -> tuple[str, ...]:
        """How this plan's runs differ from `experiment=<experiment>` (Table 2 names them)."""
        return self.command if self.config != self.experiment else self.overrides

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

    def only(self, experiments: list[str]) -> Protocol:
        """This protocol cut to `experiments` (plan names such as speech/a), e.g. for a runs root
        that trains only some of its experiments; ValueError names any it does not plan."""
        names = [plan.experiment for plan in self.experiments]
        if unknown := [name for name in experiments if name not in names]:
            raise ValueError(
                f"protocol {self.name!r} plans no experiment {', '.join(map(repr, unknown))}: "
                f"choose from {', '.join(names)}"
            )
        kept = tuple(plan for plan in self.experiments if plan.experiment in experiments)
        return dataclasses.replace(self, experiments=kept)

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
                    config=p.get("config", ""),
                    units=tuple(p["units"]),
                    lrs=tuple(float(x) for x in p["lrs"]),
                    seeds=tuple(int(s) for s in p["seeds"]),
                    overrides=tuple(p.get("overrides", ())),
                    folders=dict(p.get("folders", {})),
                    reports_as=p.get("reports_as", ""),
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

    def plans_the_same_runs(self, other: Protocol) -> bool:
        """Same name, description and grids, every run in the same folder: the folders name
        each run's identity, so the two train the same runs, however they spell the configs
        (a file written before the variants had experiment files records overrides)."""

        def runs(protocol: Protocol) -> list:
            return [
                (p.experiment, p.units, p.lrs, p.seeds, p.folders) for p in protocol.experiments
            ]

        same = (self.name, self.description) == (other.name, other.description)
        return same and runs(self) == runs(other)


def _plan(config: str, seeds: tuple[int, ...], reports_as: str = "") -> ExperimentPlan:
    """The plan of configs/experiment/<config>.yaml: its sweep's units and rates, its runs'
    folder group as the experiment they report, unless that group is no EXPERIMENTS key (a
    variant whose runs have a folder group of their own): then they report as `reports_as`."""
    # Composing reads the typed schema, which imports torch (through training.settings): only
    # the protocol builders compose; the reports read protocol files and stay torch-free.
    from gru_repro.config.store import experiment_sweep

    sweep = experiment_sweep(config)
    own_row = sweep.run_group in EXPERIMENTS
    return ExperimentPlan(
        experiment=sweep.run_group,
        config=config,
        units=sweep.units,
        lrs=sweep.lrs,
        seeds=seeds,
        reports_as="" if own_row else reports_as,
    )


# The speech experiments of the full protocol (--speech). On the whole of FSDD the paper's search
# (30 runs of up to 200 epochs, plus seeds) is days of CPU on 2 cores
# (results/speech_whole_cost.md, scripts/speech_whole_cost.py): "subset" trains the same search
# on the documented reduced CPU sizes (configs/experiment/speech/*_subset.yaml: a seeded tenth
# of the data, an epoch budget of 100), "whole" on everything with the default budget (in its
# own runs root: results/speech_whole/runs, `make reproduce-speech-whole`). Normalisation uses
# all training recordings either way.
SPEECH_DATA = {
    "subset": ("speech/a_subset", "speech/b_subset"),
    "whole": ("speech/a", "speech/b"),
}


# The optimizer of the full protocol (--optim). "paper" is what the paper states: plain RMSProp
# (configs/optim/rmsprop.yaml, the configs' default). "released" is the first author's released
# optimizer (configs/experiment/released_optim/: optim=rmsprop_released, momentum 0.9, rms floor
# 0.01, learning rate decayed linearly to 1% over the epoch budget), which the paper's
# learning-rate range seems to have been chosen for: with plain RMSProp nearly every music cell
# selects the grid's largest candidate (results/lr_search.md). The released variant runs the
# four music sets only (speech is compared between units, not with the paper's numbers); its
# run folders name the optimizer, so both variants share one runs root.
#
# Each entry is also what the reports publish (gru_repro.reports.report_sets): `report_set`
# names the folder its Table 2, Figure 3 and lr_search.md go to (`make reports`), and an entry
# that `replaces` another takes that folder over once it has finished runs; until then the
# replaced one stays there. Adding a protocol is one entry here (and its experiment files).
class OptimizerVariant(NamedTuple):
    protocol_name: str  # Protocol.name, so reports never pass one variant off as the other
    music: tuple[str, ...]  # its music experiment files (configs/experiment/), in Table 2 order
    with_speech: bool  # whether it runs the speech experiments (SPEECH_DATA) too
    note: str  # what the protocol's description says of it; "" = the configs' default
    title: str  # what Table 2's header calls it
    report_set: str  # REPORT_SETS key: the report folder it publishes into
    replaces: str = ""  # protocol_name of the entry whose report folder it takes over
    stopping: str = "with early stopping"  # how its runs end, as its description says
    # whether it trains as the paper's code did, so that Table 2 also counts the two-sided
    # paper match (test and train NLL near the paper's), not only the test target
    paper_match: bool = False


MUSIC_SETS = ("nottingham", "jsb", "musedata", "piano_midi")  # Table 2's order
MUSIC_EXPERIMENTS = tuple(f"music/{name}" for name in MUSIC_SETS)
OPTIMIZERS = {
    "paper": OptimizerVariant(
        "full", MUSIC_EXPERIMENTS, True, "", "the paper's protocol, plain RMSProp", "full"
    ),
    "released": OptimizerVariant(
        "full-released-optim",
        tuple(f"released_optim/{name}" for name in MUSIC_SETS),
        False,
        "the released code's optimizer (`optim=rmsprop_released`: RMSProp with momentum 0.9, "
        "rms floor 0.01, learning rate decayed linearly to 1% over the epoch budget)",
        "the paper's protocol with the released code's optimizer",
        "released",
    ),
    # The released code's training as it ran (configs/experiment/released/: batch 1, summed
    # objective, update norm capped at 1, 500 epochs, no early stopping); it replaces the
    # approximate block above in results/released/ once its runs exist.
    "released-exact": OptimizerVariant(
        "released-exact",
        tuple(f"released/{name}" for name in MUSIC_SETS),
        False,
        "the released code's training (`experiment=released/<set>`)",
        "the released code's training, exactly",
        "released",
        replaces="full-released-optim",
        stopping="without early stopping (the best validation checkpoint of the whole budget)",
        paper_match=True,
    ),
}
# report set -> the folder below the results root its reports go to (`make reports`)
REPORT_SETS = {"full": "", "released": "released"}
QUICK_TITLE = "reduced data, candidates and epochs, far from converged"  # Table 2 header of quick


def protocol_paper_match(name: str) -> bool:
    """Whether Table 2 of protocol `name` counts the two-sided paper match."""
    return any(v.paper_match for v in OPTIMIZERS.values() if v.protocol_name == name)


def protocol_title(name: str) -> str:
    """What Table 2's header calls protocol `name` ("" for one no entry names)."""
    titles = {v.protocol_name: v.title for v in OPTIMIZERS.values()}
    return {**titles, "quick": QUICK_TITLE}.get(name, "")


def full_protocol(n_seeds: int = 3, speech: str = "subset", optim: str = "paper") -> Protocol:
    """The paper's protocol: all 6 experiments, 3 units, the 10 candidates of configs/search/.

    `speech` picks the speech experiments' data: "subset" (default, CPU-sized) or "whole".
    `optim` picks the optimizer (OPTIMIZERS): "paper" (plain RMSProp, all 6 experiments),
    "released" (the released code's RMSProp with momentum and decay, the 4 music sets) or
    "released-exact" (the released code's training as it ran, the 4 music sets).
    """
    if speech not in SPEECH_DATA:
        raise ValueError(f"speech data {speech!r}: choose one of {', '.join(SPEECH_DATA)}")
    if optim not in OPTIMIZERS:
        raise ValueError(f"optimizer {optim!r}: choose one of {', '.join(OPTIMIZERS)}")
    variant = OPTIMIZERS[optim]
    configs = variant.music + (SPEECH_DATA[speech] if variant.with_speech else ())
    rows = MUSIC_EXPERIMENTS + (("speech/a", "speech/b") if variant.with_speech else ())
    seeds = tuple(range(1, n_seeds + 1))
    plans = tuple(_plan(config, seeds, row) for config, row in zip(configs, rows, strict=True))
    notes = [
        f"10 learning-rate candidates x 3 units per {'' if variant.with_speech else 'music '}"
        f"data set {variant.stopping} (seed 1), then the selected rate retrained with seeds "
        f"2..{n_seeds}"
    ]
    if variant.with_speech:
        notes.append(
            "speech on the reduced CPU subsets (speech A: 600 train / 200 valid and test "
            "segments; speech B: 64 / 24 sequences) with an epoch budget of 100"
            if speech == "subset"
            else "speech on all of FSDD"
        )
    if variant.note:
        notes.append(variant.note)
    return Protocol(variant.protocol_name, plans, "; ".join(notes))


# The quick protocol (configs/experiment/quick/): real data, reduced so that the whole pipeline
# (search, selection, seeds, reports) finishes in about 15 minutes on 2 CPU cores: JSB and
# Nottingham whole, speech A on its CPU subset, 3 of the 10 candidates (configs/search/quick.yaml),
# a few epochs without early stopping. Same kinds of tables and plots; the numbers are far from
# converged and are not the reproduction's results. Measured on 2 shared cores, 2 runs in
# parallel: 36 runs, 9 minutes.
QUICK_EXPERIMENTS = ("quick/jsb", "quick/nottingham", "quick/speech_a")
QUICK_SEEDS = (1, 2)  # the search run + one rerun: enough for a std, not a good one


def quick_protocol() -> Protocol:
    plans = tuple(_plan(config, QUICK_SEEDS) for config in QUICK_EXPERIMENTS)
    return Protocol(
        "quick",
        plans,
        f"reduced: {', '.join(p.experiment for p in plans)}; {len(plans[0].lrs)} of the 10 "
        f"candidates; seeds {QUICK_SEEDS}; a few epochs, no early stopping (docs/reproduce.md)",
    )
