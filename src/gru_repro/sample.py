"""Draw samples from a trained model: music as .mid, speech as .wav, plus a picture.

    python -m gru_repro.sample RUN_DIR_OR_CHECKPOINT [key=value ...]

    n=4           sequences to draw
    length=...    new frames (music, default 128) or samples (speech, default 1 s)
    seed=0        same seed, same files
    prime=0       frames / samples copied from the start of test sequence i first
    tempo=120     beats per minute written into the MIDI files (playback follows the frame rate)
    frame_rate=   music frames per second (default: the data's; the four published sets have
                  none, so one frame per beat at the tempo)
    references=2  real test sequences drawn beside the samples in the picture (0: none)
    data_dir=...  where the run's data set lives (default: the run's own setting)
    out=...       output folder (default: RUN_DIR/samples)
    prefix=sample file names {prefix}_{i}.mid / .wav, {prefix}.png, {prefix}.json

Options are parsed by OmegaConf (Hydra's config library) against ``SampleOptions``, so an
unknown key or a wrongly typed value is refused with its name.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gru_repro.sampling.export import SampleOptions, load_test_sequences, write_samples
from gru_repro.sampling.loading import find_checkpoint, load_run

log = logging.getLogger("gru_repro.sample")


def default_out_dir(checkpoint: Path) -> Path:
    """RUN/checkpoints/best.pt -> RUN/samples; any other file -> its folder / samples."""
    folder = checkpoint.parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return folder / "samples"


def parse(argv: list[str] | None) -> tuple[Path, SampleOptions, Path | None]:
    parser = argparse.ArgumentParser(
        prog="gru-repro-sample",
        description=__doc__.split("Options are parsed")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", type=Path, help="run folder (with checkpoints/best.pt) or .pt file")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    bad = [item for item in args.overrides if "=" not in item]
    if bad:
        parser.error(f"options are key=value, got {bad}")
    dotlist = [item for item in args.overrides if not item.startswith("out=")]
    outs = [item.split("=", 1)[1] for item in args.overrides if item.startswith("out=")]
    schema = OmegaConf.structured(SampleOptions)
    try:
        merged = OmegaConf.merge(schema, OmegaConf.from_dotlist(dotlist))
    except OmegaConfBaseException as error:
        parser.error(f"bad option: {str(error).splitlines()[0]}")
    options = OmegaConf.to_object(merged)
    if options.n < 1 or (options.length is not None and options.length < 1) or options.prime < 0:
        parser.error("n and length must be >= 1 and prime >= 0")
    return args.run, options, Path(outs[-1]) if outs else None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)  # one sequence step at a time: threads only add overhead
    run_path, options, out_dir = parse(argv)
    try:
        checkpoint = find_checkpoint(run_path)
        run = load_run(checkpoint)
        test_sequences = None
        if options.prime > 0 or options.references > 0:
            try:
                test_sequences = load_test_sequences(run, options.data_dir)
            except Exception as error:  # data missing offline: samples still make sense
                if options.prime > 0:
                    raise ValueError(
                        f"prime={options.prime} needs the run's test set, which failed to load "
                        f"({error}); pass data_dir=... or prime=0"
                    ) from error
                log.warning("no real test sequences in the picture: %s", error)
        written = write_samples(
            run, out_dir or default_out_dir(checkpoint), options, test_sequences
        )
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"gru-repro-sample: error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
