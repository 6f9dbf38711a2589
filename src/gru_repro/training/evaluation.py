"""Where a run measures its NLLs: each split in fixed evaluation batches, at clean weights or
(``trainer.eval_with_noise``) under weight noise from a fixed stream; and the best checkpoint,
whose weights every reported NLL is measured at.

The released code's noisy monitoring (``trainer.noisy_valid``, ``trainer.select_on=noisy``) is
a second evaluator beside the clean one: batches of one sequence, so one noise draw per
sequence, from a stream of its own per epoch (``noisy_evaluator``, ``noise_stream_seed``): the
draws are fresh every epoch, as the released code's, and the best epoch's are replayed for the
NLLs reported at its checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gru_repro.data import SPLITS, DataSplits, make_batches
from gru_repro.training.checkpoint import load_checkpoint
from gru_repro.training.metrics import NLLTotals, evaluate
from gru_repro.training.weight_noise import WeightNoise

log = logging.getLogger(__name__)


class SplitEvaluator:
    """``evaluator(split)``: the NLL totals of ``model`` over one split, as it is now.

    With ``noise`` (active), every evaluation replays the same stream, seeded by
    ``noise_seed``: one draw per batch, deterministic, and training's own stream is untouched.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        splits: DataSplits,
        *,
        batch_size: int,
        device: str,
        noise: WeightNoise | None = None,
        noise_seed: int = 0,
    ) -> None:
        self.model, self.noise, self.noise_seed = model, noise, int(noise_seed)
        self.batches = {
            name: [
                b.to(device) for b in make_batches(getattr(splits, name), batch_size, shuffle=False)
            ]
            for name in SPLITS
        }

    def __call__(self, split: str, stream: int = 0) -> NLLTotals:
        """``stream``: which noise stream (``noise_stream_seed``); the noisy validation uses
        one per epoch, so each epoch's draws are fresh, as the released code's were."""
        draw = None
        if self.noise is not None and self.noise.active:
            generator = torch.Generator().manual_seed(noise_stream_seed(self.noise_seed, stream))
            draw = lambda: self.noise.draw(generator)  # noqa: E731
        return evaluate(self.model, self.batches[split], draw_noise=draw)

    def at_best_checkpoint(self, path: Path, best_epoch: int) -> dict:
        """The run's reported NLLs (``{split}_nll``, ``_seqavg``, ``_allframes`` of every split)
        after loading the best checkpoint's weights into the model; ``{}`` when no epoch was
        ever best, ``{"failed_reason": ...}`` when its file is lost or torn."""
        try:
            weights = best_weights(path, best_epoch)
        except (FileNotFoundError, ValueError) as exc:  # saved once, now lost or torn
            log.error("run failed: %s", exc)
            return {"failed_reason": f"{exc}"}
        if weights is None:
            return {}
        self.model.load_state_dict(weights)
        return self.finals()

    def finals(self, suffix: str = "", stream: int = 0) -> dict:
        """Every split's NLLs at the model's current weights: ``{split}_nll{suffix}``,
        ``{split}_nll_seqavg{suffix}``, ``{split}_nll_allframes{suffix}`` (noise ``stream``)."""
        finals: dict = {}
        for split in SPLITS:
            totals = self(split, stream)
            finals.update({f"{k}{suffix}": v for k, v in totals.as_dict(split).items()})
        return finals


# Seeds of an evaluator's noise streams: stream 0 is the evaluator's seed itself (what
# trainer.eval_with_noise has always replayed); stream k (the noisy validation of epoch k) is
# that seed plus k strides, so no two epochs of a run, and no two runs' seeds a few apart, share
# a stream.
NOISE_STREAM_STRIDE = 1_000_003


def noise_stream_seed(noise_seed: int, stream: int) -> int:
    return int(noise_seed) + NOISE_STREAM_STRIDE * int(stream)


NOISY_SUFFIX = "_noisy"  # metrics.json keys and the curves.csv column of noisy measurements


def noisy_evaluator(
    model: torch.nn.Module, splits: DataSplits, *, device: str, noise: WeightNoise, noise_seed: int
) -> SplitEvaluator:
    """The evaluator of the noisy validation NLL (and the noisy finals): one sequence per
    batch, so one weight-noise draw per sequence, as the released code monitored; called with
    ``stream=epoch``, fresh draws every epoch, replayed exactly for the same epoch."""
    return SplitEvaluator(
        model, splits, batch_size=1, device=device, noise=noise, noise_seed=noise_seed
    )


def best_weights(path: Path, best_epoch: int) -> dict | None:
    """The model weights in ``path`` (checkpoints/best.pt); None when no epoch was ever best
    (``best_epoch`` 0: diverged early) and no file exists. A best epoch whose file is gone is a
    FileNotFoundError (a torn one a ValueError): the run's NLLs cannot be measured."""
    if not best_epoch and not path.is_file():
        return None
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} (epoch {best_epoch}) is missing; retrain the run with trainer.force=true"
        )
    return load_checkpoint(path)["model"]
