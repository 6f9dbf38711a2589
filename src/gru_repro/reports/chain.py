"""The one-change-at-a-time chain: from our batch-8 protocol to the released code's exact
training, one setting per step, each step its own learning-rate search (results/chain/).

Every step is a configs/experiment/ file (`CHAIN_STEPS`) searched over the paper's 10
candidates at seed 1 for one unit; the step's result is its selected candidate (the lowest
validation NLL among finished, non-diverged runs, as Table 2 selects). Step 6 (selection on the
noisy validation NLL) trains nothing: it reads step 5's runs through their metrics.json
`noisy_selection` block, which is what the run selecting on the noisy NLL reports, bit for bit
(docs/reproduce.md, "The chain"); its learning rate is selected on that noisy NLL too.

This module reads run folders and writes markdown (torch-free); scripts/chain_summary.py asks
the entry point which folders each step's runs have (gru_repro.train.planned_folders).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gru_repro.reports.collect import Run, select_lr
from gru_repro.reports.paper import paper_nll
from gru_repro.reports.table2_markdown import TARGET_MARGIN, TRAIN_MATCH_MARGIN

# What a step's kept checkpoint reports: metrics.json's keys (clean selection) or those of its
# noisy_selection block. "valid" is the NLL that selected the checkpoint and ranks the rates.
SELECTIONS = {
    "clean": {"valid": "valid_nll"},
    "noisy": {"valid": "best_valid_nll_seen"},
}
SHOWN = {  # column -> metrics.json key, in the order the table shows them
    "train frame-weighted": "train_nll",
    "test frame-weighted": "test_nll",
    "train seq-averaged": "train_nll_seqavg",
    "test seq-averaged": "test_nll_seqavg",
}


@dataclass(frozen=True)
class ChainStep:
    number: int
    config: str  # configs/experiment/<config>.yaml: trains the step's runs
    change: str  # what this step changes from the previous one
    select_on: str = "clean"  # "noisy": read the runs' noisy_selection block (step 6)


@dataclass(frozen=True)
class Chain:
    name: str  # results/chain/<name>.md
    title: str  # what the report's heading calls it
    experiment: str  # the paper's row it is compared with (reports.paper EXPERIMENTS key)
    unit: str
    steps: tuple[ChainStep, ...]


NOTTINGHAM_GRU = Chain(
    "nottingham_gru",
    "the Nottingham GRU",
    "music/nottingham",
    "gru",
    (
        ChainStep(
            0,
            "released_optim/nottingham",
            "start: our batch-8 protocol with the released optimizer (FlooredRMSprop, mean "
            "objective, gradient norm clipped to 1, 200 epochs, patience 20)",
        ),
        ChainStep(1, "chain/nottingham_gru_1_sum_objective", "objective summed, not averaged"),
        ChainStep(2, "chain/nottingham_gru_2_update_cap", "+ update norm capped at 1"),
        ChainStep(3, "chain/nottingham_gru_3_no_clipping", "+ no gradient clipping"),
        ChainStep(4, "chain/nottingham_gru_4_batch_1", "+ batch 1 (noise drawn per sequence)"),
        ChainStep(
            5, "chain/nottingham_gru_5_500_epochs", "+ 500 epochs, no early stopping (released)"
        ),
        ChainStep(
            6,
            "chain/nottingham_gru_5_500_epochs",
            "+ selection on the noisy validation NLL (the released code, exactly)",
            select_on="noisy",
        ),
    ),
)
CHAINS = {chain.name: chain for chain in (NOTTINGHAM_GRU,)}


def kept(run: Run, select_on: str) -> dict | None:
    """The metrics of the checkpoint the step keeps: metrics.json itself (clean) or its
    noisy_selection block; None for a run that has no such block or cannot be selected."""
    if not run.usable:
        return None
    if select_on == "clean":
        return run.metrics
    block = run.metrics.get("noisy_selection")
    return block if isinstance(block, dict) else None


@dataclass
class StepResult:
    step: ChainStep
    candidates: dict[float, Run | None]  # lr -> the step's seed-1 run (None: not started)

    @property
    def finished(self) -> int:
        return sum(1 for run in self.candidates.values() if run is not None and run.finished)

    @property
    def complete(self) -> bool:
        return self.finished == len(self.candidates)

    def valid(self, lr: float) -> float:
        """The validation NLL that ranks candidate ``lr`` (NaN: not finished or diverged)."""
        run = self.candidates[lr]
        metrics = kept(run, self.step.select_on) if run is not None else None
        value = metrics.get(SELECTIONS[self.step.select_on]["valid"]) if metrics else None
        return float(value) if isinstance(value, (int, float)) else math.nan

    @property
    def selected_lr(self) -> float | None:
        """Table 2's rule (collect.select_lr) on this step's ranking NLL, once all have run."""
        if not self.complete:
            return None
        ranked = {
            lr: Run(run.path, {**run.metrics, "valid_nll": self.valid(lr)})
            for lr, run in self.candidates.items()
            if run is not None and math.isfinite(self.valid(lr))
        }
        return select_lr(ranked)

    def selected(self, key: str) -> float:
        lr = self.selected_lr
        if lr is None:
            return math.nan
        value = kept(self.candidates[lr], self.step.select_on).get(key)
        return float(value) if isinstance(value, (int, float)) else math.nan


def _num(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def target_lines(results: list[StepResult], paper: dict[str, float | None]) -> list[str]:
    """Whether the last step with a selection matches the paper (Table 2's paper match: test
    and train NLL both within their margins, either side), under each convention."""
    done = [r for r in results if r.selected_lr is not None]
    if not done or paper["train"] is None or paper["test"] is None:
        return ["Paper match: no step has finished all its runs yet."]
    last = done[-1]
    lines = [
        f"Paper match at step {last.step.number} (test NLL within ± {TARGET_MARGIN:.2f} nats "
        f"of the paper's and train NLL within ± {TRAIN_MATCH_MARGIN:.1f}):"
    ]
    for name, suffix in (("frame-weighted", ""), ("sequence-averaged", "_seqavg")):
        test = last.selected(f"test_nll{suffix}") - paper["test"]
        train = last.selected(f"train_nll{suffix}") - paper["train"]
        verdict = lambda ok: "met" if ok else "missed"  # noqa: E731
        lines.append(
            f"- {name}: test {verdict(abs(test) <= TARGET_MARGIN)} "
            f"(Δ {_num(test, signed=True)}), train {verdict(abs(train) <= TRAIN_MATCH_MARGIN)} "
            f"(Δ {_num(train, signed=True)})."
        )
    return lines


def chain_markdown(chain: Chain, results: list[StepResult], provenance: list[str]) -> str:
    """results/chain/<name>.md: one row per step (the selected candidate's train and test NLL
    under both conventions, what moved since the previous step, Δ to the paper), then every
    candidate's ranking validation NLL, then where the runs were made."""
    paper = {split: paper_nll(chain.experiment, split, chain.unit) for split in ("train", "test")}
    lines = [
        f"# From our protocol to the released code's, one change at a time: {chain.title}",
        "",
        "<!-- written by scripts/chain_summary.py from the runs; do not edit by hand -->",
        "",
        "Each step is the previous one plus one change, searched over the paper's 10 "
        "learning-rate candidates (seed 1, one population); its row is the candidate with the "
        "lowest validation NLL. Step 6 trains nothing: it is step 5's runs read through the "
        "checkpoint selected on the noisy validation NLL (metrics.json `noisy_selection`), its "
        "rate also selected on that NLL. NLL in nats per predicted step, frame-weighted and "
        "sequence-averaged (Table 2's two conventions); *moved* = this step − the previous "
        f"step, frame-weighted; paper: train {paper['train']}, test {paper['test']} "
        "(Chung et al. 2014, Table 2).",
        "",
        "| step | change | experiment | lr | best epoch | "
        + " | ".join(SHOWN)
        + " | moved train | moved test | Δ test vs paper (fw / seq) | runs finished |",
        "|---|---|---|---|---|" + "---|" * len(SHOWN) + "---|---|---|---|",
    ]
    previous: StepResult | None = None
    for result in results:
        lr = result.selected_lr
        moved = {
            split: result.selected(f"{split}_nll") - previous.selected(f"{split}_nll")
            if previous is not None
            else math.nan
            for split in ("train", "test")
        }
        delta = " / ".join(
            _num(result.selected(key) - paper["test"], signed=True)
            for key in ("test_nll", "test_nll_seqavg")
        )
        epoch = result.selected("best_epoch")
        cells = [
            str(result.step.number),
            result.step.change,
            f"`experiment={result.step.config}`",
            "–" if lr is None else f"{lr:g}",
            "–" if not math.isfinite(epoch) else f"{epoch:.0f}",
            *(_num(result.selected(key)) for key in SHOWN.values()),
            _num(moved["train"], signed=True),
            _num(moved["test"], signed=True),
            delta,
            f"{result.finished} of {len(result.candidates)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
        previous = result
    lines += ["", *target_lines(results, paper), ""]
    lines += [
        "## Every candidate's validation NLL",
        "",
        "The NLL that ranks the candidates (clean, or noisy for step 6) at each run's kept "
        "checkpoint; – = not finished, *div* = diverged, **bold** = selected.",
        "",
    ]
    lrs = sorted(results[0].candidates) if results else []
    lines += [
        "| step | " + " | ".join(f"{lr:g}" for lr in lrs) + " |",
        "|---|" + "---|" * len(lrs),
    ]
    for result in results:
        cells = []
        for lr in lrs:
            run = result.candidates.get(lr)
            if run is not None and run.finished and run.status == "diverged":
                cells.append("*div*")
                continue
            text = _num(result.valid(lr)) if lr in result.candidates else "–"
            cells.append(f"**{text}**" if lr == result.selected_lr else text)
        lines.append(f"| {result.step.number} | " + " | ".join(cells) + " |")
    lines += ["", "## Where the runs were made", "", *provenance, ""]
    return "\n".join(lines)
