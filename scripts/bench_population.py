"""Population rows of the bench: P learning-rate members trained together against the same P
runs done one after another, in one process, on one thread.

One update is a full training update as the trainers do it (RMSProp, weight noise 0.075 on the
input and recurrent weights, the paper's gradient rescaling to norm 1):

- single run (training/loop.py ``Trainer._train_epoch``): ``noisy_weights`` with one draw,
  ``step_nll``, ``batch_loss``, ``zero_grad``, ``backward(retain_graph=True)``,
  ``clip_or_rescue``, ``optimizer.step()``, ``scheduler.step()``;
- population (training/population/): one shared draw broadcast onto the stacked weights
  (``PopulationWeightNoise``), ``member_step_nll`` of the fused population
  (models/population_fused.py), the members' losses, ``backward_and_clip_members`` (each
  member's own norm), the population RMSProp and schedule steps. Twice: with the default
  batched products (float32: one bmm over the members, each member its single run within
  rounding; the ratio) and with exact ones (``trainer.population_exact=true``: per member, bit
  for bit; the "exact" column).

Both run the same batches: the training set's sequences of Nottingham (real lengths, read
from ``$DATA_MIRROR`` or data/), shuffled and bucketed as the trainer does, the first
``UPDATES[batch]`` batches. Without the data set the rows use synthetic sequences of
Nottingham-like lengths and the report says so. Frames are predicted frames (padding not
counted), summed over the members: aggregate frames/s = P x frames / CPU seconds.

The arithmetic limit: matmul FLOPs per frame, forward plus backward, of the recurrent layer and
the output layer (:func:`flops_per_frame`), against the core's peak measured as a large
single-thread float32 matmul (:func:`peak_flops`).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from pathlib import Path

import torch

from gru_repro.data import load_splits, make_batches
from gru_repro.data.synthetic import load_synthetic
from gru_repro.models import build_model, kernels
from gru_repro.models.population_fused import FusedPopulation
from gru_repro.models.recurrent import exact_member_products
from gru_repro.training.clipping import clip_or_rescue
from gru_repro.training.metrics import batch_loss
from gru_repro.training.optim import build_optimization
from gru_repro.training.population import (
    PopulationWeightNoise,
    backward_and_clip_members,
    build_population_optimizer,
    build_population_schedule,
)
from gru_repro.training.weight_noise import WeightNoise, noisy_weights

log = logging.getLogger("bench")

MEMBERS = 10
GATES = {"tanh": 1, "gru": 3, "lstm": 4}
# task -> {unit: hidden size}; both on Nottingham's 88 inputs and outputs (the speech sizes are
# the speech task's hidden sizes: its mixture head is not fused, so the head is the music one)
SIZES = {
    "music": {"tanh": 100, "gru": 46, "lstm": 36},
    "speech sizes": {"tanh": 400, "gru": 227, "lstm": 195},
}
BATCHES = (1, 8)
UPDATES = {1: 24, 8: 6}  # batches per measurement (about 5,000 frames each)
TARGETS = {1: 4.0, 8: 2.0}  # population / sequential aggregate frames/s (issue 16)
LRS = [1e-5 * 10 ** (k / 3) for k in range(MEMBERS)]  # 1e-5 .. 1e-2, as the paper's grid
OPTIM = {"name": "rmsprop", "alpha": 0.95, "eps": 1e-6}
NOISE_STD, CLIP = 0.075, 1.0
REPO_ROOT = Path(__file__).resolve().parents[1]


def training_batches(batch: int) -> tuple[list, str]:
    """The first UPDATES[batch] shuffled, bucketed training batches of Nottingham, and where
    they come from (the real set, or synthetic stand-ins when it is not there)."""
    try:
        splits = load_splits("nottingham", data_dir=REPO_ROOT / "data")
        source = "Nottingham training set"
    except Exception as exc:  # no data and no mirror: synthetic lengths, said in the report
        log.warning("Nottingham not available (%s): synthetic sequences", exc)
        splits = load_synthetic(
            n_train=200, n_valid=2, n_test=2, min_length=50, max_length=400, input_size=88
        )
        source = "SYNTHETIC sequences (Nottingham not found), lengths 50-400"
    gen = torch.Generator().manual_seed(0)
    batches = make_batches(splits.train, batch, shuffle=True, generator=gen, bucket=True)
    return batches[: UPDATES[batch]], source


def flops_per_frame(unit: str, hidden: int, inputs: int = 88, outputs: int = 88) -> int:
    """Matmul FLOPs per predicted frame, forward + backward: input projection 2 G H I forward
    and its weight gradient (no gradient for the data); recurrent product 2 G H H forward, its
    input and weight gradients; output layer 2 D H forward, its input and weight gradients."""
    gh = GATES[unit] * hidden
    return 2 * (2 * gh * inputs) + 3 * (2 * gh * hidden) + 3 * (2 * outputs * hidden)


def peak_flops(size: int = 1536, repeats: int = 5) -> float:
    """FLOP/s of a large float32 matmul on this thread (the best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a.mm(b)
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        a.mm(b)
        best = min(best, time.process_time() - start)
    return 2 * size**3 / best


def single_updates(unit: str, hidden: int, batches: list, lr: float):
    """A closure running ``batches`` through one single run's training updates."""
    torch.manual_seed(0)
    model = build_model(unit, 88, 88, hidden_size=hidden)
    params = list(model.parameters())
    optimizer, scheduler = build_optimization(params, {**OPTIM, "lr": lr}, total_updates=10**6)
    noise = WeightNoise(model, std=NOISE_STD, seed=2)

    def run() -> None:
        for batch in batches:
            with noisy_weights(model, noise.draw()):
                step_nll = model.step_nll(batch)
                loss = batch_loss(step_nll, batch.mask)
                optimizer.zero_grad(set_to_none=True)
                loss.backward(retain_graph=True)
                clip_or_rescue(loss, params, CLIP)
            optimizer.step()
            scheduler.step()

    return run


def population_updates(unit: str, hidden: int, batches: list, exact: bool = False):
    """A closure running ``batches`` through the population's training updates, with exact
    (per-member) or batched products (models/recurrent.py)."""
    torch.manual_seed(0)
    population = FusedPopulation([build_model(unit, 88, 88, hidden_size=hidden)] * MEMBERS)
    params = list(population.parameters())
    optimizer = build_population_optimizer(params, lrs=LRS, **OPTIM)
    schedule = build_population_schedule(optimizer, schedule="constant", total_updates=10**6)
    noise = PopulationWeightNoise(population, std=NOISE_STD, seed=2)

    def run() -> None:
        with exact_member_products(exact):
            for batch in batches:
                with noisy_weights(population, noise.draw()):
                    step_nll = population.member_step_nll(batch)  # (P, T, B)
                    losses = step_nll.sum((1, 2)) / batch.mask.sum().clamp(min=1)
                    backward_and_clip_members(losses, params, CLIP)
                optimizer.step()
                schedule.step()

    return run


def cpu_seconds(run) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def bench_population_case(task: str, unit: str, batch: int, repeats: int, peak: float) -> dict:
    hidden = SIZES[task][unit]
    batches, source = training_batches(batch)
    frames = sum(b.n_steps for b in batches)
    with kernels.use_backend("cpp" if kernels.backend() != "python" else "python"):
        singles = [single_updates(unit, hidden, batches, lr) for lr in LRS]
        population = population_updates(unit, hidden, batches)
        exact = population_updates(unit, hidden, batches, exact=True)
        population()  # warm-up (and the packed panels' first allocation)
        exact()
        singles[0]()
        seq_times, pop_times, exact_times = [], [], []
        for _ in range(repeats):  # interleaved, so load from other processes hits all
            seq_times.append(sum(cpu_seconds(run) for run in singles))
            pop_times.append(cpu_seconds(population))
            exact_times.append(cpu_seconds(exact))
    seq_fps = MEMBERS * frames / statistics.median(seq_times)
    pop_fps = MEMBERS * frames / statistics.median(pop_times)
    exact_fps = MEMBERS * frames / statistics.median(exact_times)
    flops = flops_per_frame(unit, hidden)
    row = {
        "task": task,
        "unit": unit,
        "hidden_size": hidden,
        "batch": batch,
        "members": MEMBERS,
        "updates": len(batches),
        "frames_per_member": frames,
        "data": source,
        "sequential_frames_per_second": round(seq_fps, 1),
        "population_frames_per_second": round(pop_fps, 1),
        "ratio": round(pop_fps / seq_fps, 3),
        "exact_frames_per_second": round(exact_fps, 1),
        "exact_ratio": round(exact_fps / seq_fps, 3),
        "target": TARGETS[batch] if task == "music" else None,
        "flops_per_frame": flops,
        "limit_frames_per_second": round(peak / flops, 1),
        "fraction_of_limit": round(pop_fps * flops / peak, 4),
    }
    log.info(
        "population %s %s batch %d: ratio %.2f (%.0f vs %.0f frames/s)",
        task,
        unit,
        batch,
        row["ratio"],
        pop_fps,
        seq_fps,
    )
    return row


def population_rows(repeats: int, tasks: tuple[str, ...] | None = None) -> dict:
    """The population section of bench.json: the peak and one row per (task, unit, batch) of
    ``tasks`` (default: all of SIZES)."""
    peak = peak_flops()
    rows = [
        bench_population_case(task, unit, batch, repeats, peak)
        for task in tasks or tuple(SIZES)
        for batch in BATCHES
        for unit in SIZES[task]
    ]
    return {"members": MEMBERS, "lrs": LRS, "peak_flops": round(peak), "rows": rows}


def population_markdown(section: dict) -> str:
    rows = section["rows"]
    sources = sorted({row["data"] for row in rows})
    lines = [
        "",
        f"## Populations: {section['members']} learning-rate members in one process",
        "",
        "Full training updates (RMSProp, weight noise 0.075, per-member gradient rescaling to",
        "norm 1, optimizer and schedule steps) of the fused population",
        "(models/population_fused.py) against the same members trained one after another in",
        "this process; median of interleaved repeats, process CPU time, one thread.",
        "Population = the default batched products (one bmm over the members, each member its",
        "single run within float32 rounding); exact = `trainer.population_exact=true` (per-member",
        "products, each member its single run bit for bit).",
        f"Data: {'; '.join(sources)}, the first shuffled, bucketed batches (frames =",
        "predicted frames, padding not counted; aggregate = summed over the members).",
        "Ratio = population aggregate frames/s",
        "over the sequential runs' aggregate. Limit = the core's peak (a "
        f"{section['peak_flops'] / 1e9:.0f} GFLOP/s single-thread",
        "float32 matmul, measured) over the matmul FLOPs per frame, forward plus backward, of",
        "the recurrent and output layers. The speech sizes are the speech task's hidden sizes",
        "on this music data (its mixture head is not fused).",
        "",
        "| sizes | unit | hidden | batch | sequential frames/s | population frames/s | ratio "
        "| target | exact frames/s | exact ratio | kFLOP/frame | limit frames/s "
        "| population / limit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        target = row["target"]
        met = "" if not target else (" ok" if row["ratio"] >= target else " MISSED")
        lines.append(
            f"| {row['task']} | {row['unit']} | {row['hidden_size']} | {row['batch']} "
            f"| {row['sequential_frames_per_second']:,.0f} "
            f"| {row['population_frames_per_second']:,.0f} | {row['ratio']:.2f} "
            f"| {f'>= {target}' if target else ''}{met} "
            f"| {row['exact_frames_per_second']:,.0f} | {row['exact_ratio']:.2f} "
            f"| {row['flops_per_frame'] / 1e3:.0f} "
            f"| {row['limit_frames_per_second']:,.0f} | {row['fraction_of_limit']:.0%} |"
        )
    return "\n".join(lines) + "\n"
