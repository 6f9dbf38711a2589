"""Training speed of our units vs torch.nn's, side by side in one process.

One training step = forward + backward + RMSProp update of recurrent layer and output layer,
float32, one thread. Both sides share the same output layer and loss (a linear layer with
Bernoulli NLL), so the ratio measures the recurrent layer. Implementations are interleaved
within every repeat (so load from other processes hits both alike) and the median over
repeats is reported. Writes outputs/bench.md and outputs/bench.json atomically (`make bench`;
`--out-dir results` is `make publish-bench`, the committed copy).

Columns and their backends (see gru_repro.models.kernels):

- "ours": our units with the per-step loops in C++ (backend ``cpp``; the bench fails if the
  extension cannot be built). This is the column the ratio and the targets refer to. With
  ``GRU_REPRO_KERNELS=python`` it runs the Python loops instead, and the report says so.
- "ours, Python loops": the same units with the Python loops (backend ``python``), to show
  what the C++ loops gain; its ratio to torch.nn is the "ratio, Python loops" column.
- "torch.nn": nn.RNN (tanh) / nn.GRU / nn.LSTM at the same hidden size (their fused kernels).

Alternatives (batch 16 only, unless --no-alternatives): "ours, torch matmul", the C++ loops with
torch's matmul for the recurrent products instead of the packed kernel (what the kernel gains);
the same equations as a plain Python
loop with autograd deriving the backward ("autograd loop", no hand-written BPTT, so no
backend), the torch.nn-form GRU (reset_after) and the LSTM without peepholes (both with the
backend of "ours"). torch.compile is not used: compiling the
unrolled loop takes minutes, and a compiled single step (measured once on a 2-core machine:
17 s to compile the peephole LSTM's pointwise step, then ~19 us per call against ~25 us for
the same step in eager ops) saves little over the in-place eager ops of the hand-written loop.

Population rows (``scripts/bench_population.py``, unless --no-population): 10 learning-rate
members trained together by the fused population against the same 10 runs one after another,
full training updates on Nottingham's sequence lengths, at batch 1 and 8, with the arithmetic
limit of the core.

Usage: python scripts/bench.py [--repeats 7] [--quick] [--no-alternatives] [--no-population]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from bench_population import population_markdown, population_rows
from torch import nn

from gru_repro.atomic import atomic_write_text
from gru_repro.models import BernoulliHead, kernels, make_unit
from gru_repro.models.reference import reference_forward
from gru_repro.provenance import cpu_model, git_commit

REPO_ROOT = Path(__file__).resolve().parents[1]
STEPS = 200  # frames per sequence (the benchmark setting)
# task -> (input size, output size, {unit: hidden size}) -- the paper's Table 1 sizes
TASKS = {
    "music": (88, 88, {"tanh": 100, "gru": 46, "lstm": 36}),
    "speech": (20, 10, {"tanh": 400, "gru": 227, "lstm": 195}),
}
TORCH_TWIN = {"tanh": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# Ratio targets ours / torch.nn at batch 16 (issue 3).
TARGETS = {
    ("music", "tanh"): 1.5,
    ("music", "gru"): 2.0,
    ("music", "lstm"): 0.8,
    ("speech", "tanh"): 1.0,
    ("speech", "gru"): 1.0,
    ("speech", "lstm"): 0.8,
}
POPULATION_REPEATS = 5  # the population rows run ten runs per repeat: fewer repeats
log = logging.getLogger("bench")


class ReferenceWrapper(nn.Module):
    """Our parameters run through the plain-autograd loop (the alternative to hand-written BPTT)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return reference_forward(self.layer, x)


def ours_backend() -> str:
    """Backend of the "ours" column: the C++ loops unless GRU_REPRO_KERNELS=python."""
    return "python" if kernels.backend() == "python" else "cpp"


def make_trainer(rnn: nn.Module, hidden: int, output_size: int, backend: str, packed: bool):
    """One training step of ``rnn`` under loops ``backend``; ``packed``: whether the C++ loops'
    recurrent products use the packed kernel (where the CPU has it) or torch's matmul."""
    head = BernoulliHead(hidden, output_size)
    params = list(rnn.parameters()) + list(head.parameters())
    optimizer = torch.optim.RMSprop(params, lr=1e-4)

    def products():
        return kernels.use_packed_matmul(packed) if backend == "cpp" else contextlib.nullcontext()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with kernels.use_backend(backend), products():
            optimizer.zero_grad(set_to_none=True)
            out, _ = rnn(x)
            head.nll(head(out), y).mean().backward()
            optimizer.step()

    return step


def implementations(unit: str, input_size: int, hidden: int, alternatives: bool) -> dict:
    """name -> (module, loops backend, packed recurrent products) for one case."""
    ours = ours_backend()
    impls = {
        "ours": (make_unit(unit, input_size, hidden), ours, True),
        "ours, Python loops": (make_unit(unit, input_size, hidden), "python", False),
        "torch.nn": (TORCH_TWIN[unit](input_size, hidden), ours, True),
    }
    if alternatives:
        if ours == "cpp":
            impls["ours, torch matmul"] = (make_unit(unit, input_size, hidden), "cpp", False)
        impls["autograd loop"] = (
            ReferenceWrapper(make_unit(unit, input_size, hidden)),
            ours,
            True,
        )
        if unit == "gru":
            impls["ours reset_after"] = (
                make_unit(unit, input_size, hidden, reset_after=True),
                ours,
                True,
            )
        if unit == "lstm":
            impls["ours no peephole"] = (
                make_unit(unit, input_size, hidden, peephole=False),
                ours,
                True,
            )
    return impls


def time_steps(step, x, y, n_steps: int) -> float:
    """Frames per second of CPU time over ``n_steps`` training steps.

    CPU time of this process, not wall time: with one thread the two agree on a quiet
    machine, and on a shared one CPU time does not count the time other processes held the
    core (cache and memory-bandwidth contention still show).
    """
    start = time.process_time()
    for _ in range(n_steps):
        step(x, y)
    elapsed = time.process_time() - start
    return n_steps * x.shape[0] * x.shape[1] / elapsed


def bench_case(task: str, unit: str, batch: int, repeats: int, alternatives: bool) -> dict:
    input_size, output_size, sizes = TASKS[task]
    hidden = sizes[unit]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, batch, input_size, generator=gen)
    y = (torch.rand(STEPS, batch, output_size, generator=gen) < 0.1).float()
    torch.manual_seed(0)
    steps = {
        name: make_trainer(rnn, hidden, output_size, backend, packed)
        for name, (rnn, backend, packed) in implementations(
            unit, input_size, hidden, alternatives
        ).items()
    }
    # Steps per measurement: about 0.25 s of the torch.nn step, at least 2.
    steps["torch.nn"](x, y)
    once = statistics.median(time_steps(steps["torch.nn"], x, y, 1) for _ in range(3))
    n_steps = max(2, int(0.25 * once / (STEPS * batch)))
    for step in steps.values():  # warm-up
        step(x, y)
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            samples[name].append(time_steps(step, x, y, n_steps))
    fps = {name: statistics.median(values) for name, values in samples.items()}
    row = {
        "task": task,
        "unit": unit,
        "batch": batch,
        "hidden_size": hidden,
        "frames_per_second": {k: round(v, 1) for k, v in fps.items()},
        "ratio": round(fps["ours"] / fps["torch.nn"], 3),
        "ratio_python_loops": round(fps["ours, Python loops"] / fps["torch.nn"], 3),
        "target": TARGETS[task, unit] if batch == 16 else None,
        "steps_per_repeat": n_steps,
    }
    log.info(
        "%s %s batch %d: ratio %.2f %s", task, unit, batch, row["ratio"], row["frames_per_second"]
    )
    return row


def machine_info() -> dict:
    return {
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "ours_backend": ours_backend(),
        "recurrent_matmul": kernels.recurrent_matmul_in_use(),
        "commit": git_commit(REPO_ROOT),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def loops_label(backend: str) -> str:
    return "C++ (csrc/loops.cpp)" if backend == "cpp" else "Python (GRU_REPRO_KERNELS=python)"


def matmul_label(name: str) -> str:
    return "the packed AVX-512 kernel" if name == "packed-avx512" else "torch's matmul"


def markdown(report: dict) -> str:
    info = report["info"]
    lines = [
        "# Training speed: our units vs torch.nn (CPU, float32, 1 thread)",
        "",
        f"Written by `scripts/bench.py` (`make bench`). torch {info['torch']}, "
        f"{info['cpu_count']} CPUs ({info['processor']}), load average at start "
        f"{info['load_average']}, commit {info['commit']}, {info['date']}.",
        "",
        f"Median of {report['repeats']} interleaved repeats; {STEPS} frames per sequence; frames",
        "per second of process CPU time. One step = forward + backward + RMSProp on the",
        "recurrent and output layers (the same output layer and loss on both sides). Ratio =",
        "our frames/s over torch.nn's (nn.RNN tanh / nn.GRU / nn.LSTM at the same hidden size).",
        "",
        'Backends (`GRU_REPRO_KERNELS`, see docs/ARCHITECTURE.md): "ours" and the alternatives',
        f'run the per-step loops in **{loops_label(info.get("ours_backend", "cpp"))}**; "ours,',
        'Python loops" is the same unit with the Python loops, and "ratio, Python loops" its',
        "ratio to torch.nn. The autograd loop has no hand-written loops.",
        "",
        "Recurrent product of each step in the C++ loops (`GRU_REPRO_MATMUL`, see",
        f"csrc/recurrent_matmul.h): **{matmul_label(info.get('recurrent_matmul', 'torch'))}** "
        'for "ours"; "ours, torch matmul" is',
        "the same C++ loops with torch's matmul for that product (MKL here).",
        "",
    ]
    names = list(dict.fromkeys(n for row in report["rows"] for n in row["frames_per_second"]))
    header = "| task | unit | hidden | batch | " + " | ".join(f"{n} frames/s" for n in names)
    lines += [
        header + " | ratio | ratio, Python loops | target |",
        "|" + "---|" * (len(names) + 7),
    ]
    for row in report["rows"]:
        fps = " | ".join(
            f"{row['frames_per_second'][n]:,.0f}" if n in row["frames_per_second"] else ""
            for n in names
        )
        target = f">= {row['target']}" if row["target"] else ""
        met = "" if not row["target"] else (" ok" if row["ratio"] >= row["target"] else " MISSED")
        lines.append(
            f"| {row['task']} | {row['unit']} | {row['hidden_size']} | {row['batch']} | {fps} "
            f"| {row['ratio']:.2f} | {row['ratio_python_loops']:.2f} | {target}{met} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats per case")
    parser.add_argument("--quick", action="store_true", help="batch 16 only, 3 repeats")
    parser.add_argument(
        "--no-alternatives", action="store_true", help="skip the alternative variants at batch 16"
    )
    parser.add_argument("--no-population", action="store_true", help="skip the population rows")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "outputs")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    if ours_backend() == "cpp":
        with kernels.use_backend("cpp"):
            kernels.loops()  # build now, and fail here if the extension cannot be built
    repeats = min(args.repeats, 3) if args.quick else args.repeats
    batches = (16,) if args.quick else (16, 1, 64)
    report = {"info": machine_info(), "repeats": repeats, "steps": STEPS, "rows": []}
    for batch in batches:
        for task in TASKS:
            for unit in ("tanh", "gru", "lstm"):
                alternatives = batch == 16 and not args.no_alternatives
                report["rows"].append(bench_case(task, unit, batch, repeats, alternatives))
    if not args.no_population:
        tasks = ("music",) if args.quick else None  # --quick: the music sizes only
        report["population"] = population_rows(min(repeats, POPULATION_REPEATS), tasks)
    text = markdown(report)
    if "population" in report:
        text += population_markdown(report["population"])
    atomic_write_text(args.out_dir / "bench.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(args.out_dir / "bench.md", text)
    print(f"wrote {args.out_dir / 'bench.md'} and bench.json")


if __name__ == "__main__":
    main()
