"""Write a few samples from the best runs of the reproduction into results/samples/.

    python scripts/make_samples.py                       # runs under outputs/ and results/runs/
    python scripts/make_samples.py --runs outputs/reproduce-quick --n 3 --seed 1

For each data set and unit, the run with the lowest validation NLL gives ``--n`` samples:
.mid files (music) or .wav files (speech), one .png of the samples beside real test
sequences, and a .json of how they were drawn; results/samples/README.md indexes them.
Small files only: 64 frames of music, 2 seconds of speech per sample.
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

DEFAULT_ROOTS = [Path("outputs"), Path("results/runs")]
MUSIC_FRAMES = 64  # 32 s at one frame per beat and 120 bpm
SPEECH_SECONDS = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=Path, nargs="+", default=DEFAULT_ROOTS, help="searched recursively"
    )
    parser.add_argument("--out", type=Path, default=Path("results/samples"))
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
        searched = ", ".join(str(root) for root in args.runs)
        print(
            f"make_samples: no finished runs (metrics.json with status completed/early_stopped "
            f"and checkpoints/best.pt) under {searched}; run `make reproduce-quick` or "
            "`make reproduce` first, or pass --runs FOLDER",
            file=sys.stderr,
        )
        return 1
    options = SampleOptions(
        n=args.n,
        seed=args.seed,
        prime=args.prime,
        references=args.references,
        data_dir=args.data_dir,
    )
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
    index = args.out / "README.md"
    atomic_write_text(index, index_markdown(results, args.out, note))
    print(f"wrote samples of {len(results)} runs; index {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
