"""Write a few samples from the best runs into a gallery folder (default outputs/samples/).

    python scripts/make_samples.py                       # runs under outputs/ -> outputs/samples
    python scripts/make_samples.py --runs outputs/quick/runs --n 3 --seed 1
    python scripts/make_samples.py --runs results/runs results/quick/runs --out results/samples

For each data set and unit, the run with the lowest validation NLL gives ``--n`` samples:
.mid files (music) or .wav files (speech), one .png of the samples beside real test
sequences, and a .json of how they were drawn; <out>/README.md indexes them, keeping the rows
of data sets it did not sample this time. Small files only: 64 frames of music, 2 seconds of
speech per sample. The committed gallery, results/samples/, is written only by
`make publish-samples`, from runs with their checkpoints (committed runs keep none).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from gru_repro.atomic import atomic_write_text
from gru_repro.sampling.export import SampleOptions
from gru_repro.sampling.gallery import best_runs, find_runs, index_markdown, sample_gallery

DEFAULT_ROOTS = [Path("outputs")]
DEFAULT_OUT = Path("outputs/samples")
MUSIC_FRAMES = 64  # 32 s at one frame per beat and 120 bpm
SPEECH_SECONDS = 2.0


def no_runs_message(roots: list[Path]) -> str:
    """Why nothing can be sampled, and the command that trains something that can."""
    searched = ", ".join(str(root) for root in roots)
    summaries = sum(1 for root in roots if root.is_dir() for _ in root.rglob("metrics.json"))
    found = (
        f"the {summaries} run(s) there have no checkpoints/best.pt (committed runs keep only "
        "their summaries)"
        if summaries
        else "none there"
    )
    return (
        f"make_samples: no finished runs to sample under {searched}: {found}. Train your own "
        "first: `make reproduce-quick` (the quick protocol into outputs/quick/runs, ~15 min) or "
        "`python -m gru_repro.train data=jsb` (outputs/jsb/...), then rerun; --runs FOLDER "
        "samples other runs"
    )


def _table_start(lines: list[str]) -> int:
    """Index of the first row below the index table's |---| line (len(lines) if none)."""
    return next((i + 1 for i, line in enumerate(lines) if line.startswith("|---")), len(lines))


def _row_key(row: str) -> list[str]:
    return [cell.strip() for cell in row.split("|")[1:3]]  # data set, unit


def kept_rows(index: Path, sampled: set[str]) -> list[str]:
    """Table rows of an existing index for the data sets not sampled this time, so a gallery
    sampled from some data sets' runs keeps the others' entries (their files stay too)."""
    if not index.is_file():
        return []
    lines = index.read_text().splitlines()
    rows = [line for line in lines[_table_start(lines) :] if line.startswith("| ")]
    return [row for row in rows if _row_key(row)[0] not in sampled]


def with_rows(index_text: str, kept: list[str]) -> str:
    """``index_text`` with the ``kept`` rows added to its table, rows sorted by data set, unit."""
    lines = index_text.rstrip("\n").splitlines()
    start = _table_start(lines)
    return "\n".join(lines[:start] + sorted(lines[start:] + kept, key=_row_key)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=Path, nargs="+", default=DEFAULT_ROOTS, help="searched recursively"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="gallery folder")
    parser.add_argument("--n", type=int, default=2, help="samples per run")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    parser.add_argument("--prime", type=int, default=0, help="music frames copied from test")
    parser.add_argument("--references", type=int, default=1, help="real test sequences shown")
    parser.add_argument("--data-dir", default=None, help="data folder (default: each run's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)

    chosen = best_runs(find_runs(args.runs))
    if not chosen:
        print(no_runs_message(args.runs), file=sys.stderr)
        return 1
    options = SampleOptions(
        n=args.n,
        seed=args.seed,
        prime=args.prime,
        references=args.references,
        data_dir=args.data_dir,
    )
    index = args.out / "README.md"
    kept = kept_rows(index, {run.dataset for run in chosen})
    results = sample_gallery(
        chosen, args.out, options, music_frames=MUSIC_FRAMES, speech_seconds=SPEECH_SECONDS
    )
    note = (
        f"Written by `make samples` (scripts/make_samples.py, seed {args.seed}): for each data "
        "set and unit, the run with the lowest validation NLL. Music: MIDI at one frame per "
        "beat, 120 bpm (the published rolls carry no wall-clock rate), piano. Speech: 16-bit "
        "WAV at the data's sample rate, normalisation undone; audio is data, so the WAV files "
        "stay local (git-ignored) and the pictures show them. Pictures: samples (left) beside a "
        "real test sequence (right). Draw more with `python -m gru_repro.sample RUN n=4`."
    )
    atomic_write_text(index, with_rows(index_markdown(results, args.out, note), kept))
    print(f"wrote samples of {len(results)} runs; index {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
