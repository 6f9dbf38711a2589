"""One run's bookkeeping, shared by the single-run ``Trainer`` (training/loop.py) and the
``PopulationTrainer`` (training/population/trainer.py), which keeps one per member: the run
folder, metrics.json, curves.csv, TensorBoard events, checkpoints, early stopping and the
divergence test. What the run computes (model, optimizer, noise) stays with the trainer; it
hands the record the checkpoints to write.

    record = RunRecord(run_dir, info, settings)
    t0 = record.start()                         # writer open, metrics "running", curves.csv
    record.log_update(grad_norm, lr, t0)        # after each update
    record.end_of_epoch(epoch, train_nll, valid_nll, t0, checkpoints)  # valid_nll None: no eval
    record.finish(t0, finals)                   # finals at the best checkpoint -> metrics.json
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from gru_repro.atomic import atomic_torch_save, remove_stale_temp_files
from gru_repro.config.identity import identity_hash
from gru_repro.data import SPLITS
from gru_repro.models import kernels
from gru_repro.provenance import git_commit, machine_description
from gru_repro.run_format import CURVE_COLUMNS, NOISY_VALID_COLUMN
from gru_repro.training import run_files, tensorboard_views
from gru_repro.training.checkpoint import capture_rng_state, plain_data
from gru_repro.training.early_stopping import EarlyStopping, explosion
from gru_repro.training.metrics import NLL_CONVENTION
from gru_repro.training.run_state import RunState
from gru_repro.training.settings import TrainerSettings

log = logging.getLogger(__name__)


def loops_info(settings: TrainerSettings) -> dict:
    """Which time loops and recurrent products the run uses (trainer.backend; a config error
    now, at setup, when it asks for C++ loops that cannot be built here)."""
    with kernels.use_setting(settings.backend):
        return {
            "loops": kernels.loops_in_use(settings.device),  # cpp or python (models/kernels.py)
            "recurrent_matmul": kernels.recurrent_matmul_in_use(settings.device),  # packed/torch
        }


def describe_run(
    run_info: dict | None,
    model: nn.Module,
    *,
    model_options: dict,
    optim_options: dict,
    seed: int,
    settings: TrainerSettings,
    identity: dict,
) -> dict:
    """What metrics.json and the TensorBoard hparams say about a run: ``run_info`` (data set,
    folder) then the model's sizes, the optimizer, the protocol and where it ran."""
    return {
        **(run_info or {}),
        "unit": model_options.get("unit"),
        "hidden_size": getattr(model.rnn, "hidden_size", None),
        "n_params_recurrent": sum(p.numel() for p in model.rnn.parameters()),
        "n_params_total": sum(p.numel() for p in model.parameters()),
        "lr": optim_options["lr"],
        "optim": optim_options["name"],
        "seed": seed,
        "batch_size": settings.batch_size,
        "max_epochs": settings.max_epochs,
        "patience": settings.patience,  # the reports flag runs still improving at the budget
        "eval_every": settings.eval_every,
        "weight_noise": settings.weight_noise,
        "git_commit": git_commit(),
        "machine": machine_description(),  # where it ran (the last session, if resumed)
        "device": str(settings.device),
        **loops_info(settings),
        "nll_convention": NLL_CONVENTION,
        "identity": identity,
        "identity_hash": identity_hash(identity),
    }


def model_bundle(
    weights: dict, *, config: dict, identity: dict, model_options: dict, splits, state, seed: int
) -> dict:
    """checkpoints/best.pt: ``weights`` (the model's state dict) and what is needed to rebuild
    and describe them (``splits``: the DataSplits; ``state``: the RunState)."""
    return {
        "model": weights,
        "config": config,
        "identity": identity,
        "model_options": plain_data(model_options),
        "input_size": splits.input_size,
        "output_size": splits.output_size,
        "data_info": plain_data(splits.facts.as_plain()),
        "epoch": state.epoch,
        "updates": state.updates,
        "seed": seed,
    }


def resume_bundle(
    model: dict,
    *,
    optimizer: dict,
    scheduler: dict,
    stopper: EarlyStopping,
    weight_noise: dict,
    shuffle_generator: torch.Generator,
    state: RunState,
    other_stopper: EarlyStopping | None = None,
) -> dict:
    """checkpoints/last.pt: ``model_bundle`` plus everything a resumed run needs to continue
    exactly (optimizer and schedule state dicts, early stopping, noise and every generator;
    the other selection's best, ``RunRecord.other``, when kept); plain data and tensors, so
    ``torch.load(weights_only=True)`` reads it."""
    bundle = {
        **model,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "early_stopping": stopper.state_dict(),
        "weight_noise": weight_noise,
        "shuffle_generator": shuffle_generator.get_state(),
        "rng": capture_rng_state(),
        "run_state": plain_data(dataclasses.asdict(state)),
    }
    if other_stopper is not None:
        bundle["early_stopping_other"] = other_stopper.state_dict()
    return bundle


class RunRecord:
    """The files and counters of one run in ``run_dir``.

    ``info``: the run's description (metrics.json's leading keys, TensorBoard hparams);
    ``label``: what its log lines start with (a population member's lr);
    ``state`` (RunState) and ``stopper`` (EarlyStopping) are what last.pt saves of it.

    ``other``: with no early stopping (patience 0) the selection changes nothing in the
    training, so a run that measures both validation NLLs also keeps the other one's best
    (``checkpoints/best_<other_name>.pt``); metrics.json's ``<other_name>_selection`` is then
    what the run with ``trainer.select_on=<other_name>`` reports, bit for bit.
    """

    def __init__(
        self, run_dir: str | Path, info: dict, settings: TrainerSettings, *, label: str = ""
    ) -> None:
        self.run_dir = Path(run_dir)
        self.prefix = f"{label}: " if label else ""  # log lines of a population's members
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.info, self.settings = info, settings
        self.state = RunState()
        self.stopper = EarlyStopping(settings.patience, settings.min_delta)
        self.writer: SummaryWriter | None = None
        self.noisy = settings.measures_noisy_valid  # a noisy valid NLL beside the clean one
        self.curve_columns = CURVE_COLUMNS + ((NOISY_VALID_COLUMN,) if self.noisy else ())
        self.other: EarlyStopping | None = None  # the other selection (see the class docstring)
        self.other_name = "clean" if settings.select_on == "noisy" else "noisy"
        if self.noisy and settings.patience == 0:
            self.other = EarlyStopping(0, settings.min_delta)
        self._other_improved = False

    @property
    def other_checkpoint(self) -> Path:
        return self.ckpt_dir / f"best_{self.other_name}.pt"

    def take_other_improved(self) -> bool:
        """Whether the last validation was a new best of the other selection (then save
        ``other_checkpoint``); reset by the call."""
        improved, self._other_improved = self._other_improved, False
        return improved

    @property
    def fresh(self) -> bool:
        """No epoch done and the untrained model not yet evaluated."""
        return self.state.epoch == 0 and self.state.initial_valid_nll is None

    @property
    def stopped(self) -> bool:
        """Diverged or early-stopped: the run trains no further."""
        return self.state.diverged_epoch is not None or self.stopper.should_stop

    def start(self) -> float:
        """Open the run's files for this session; the perf_counter origin of its wall time."""
        st = self.state
        t0 = time.perf_counter() - st.wall_seconds
        if st.tb_start_walltime is None:
            st.tb_start_walltime = time.time()
        if self.fresh:  # a fresh start (or trainer.force): no stale checkpoint may survive
            for name in ("best.pt", "last.pt", self.other_checkpoint.name):
                (self.ckpt_dir / name).unlink(missing_ok=True)
        remove_stale_temp_files(self.run_dir, recursive=True)  # temp files of killed writers
        self.writer = SummaryWriter(str(self.run_dir), purge_step=st.updates)
        self.nll_tags = tensorboard_views.start(
            self.writer, self.info, eval_train=self.settings.eval_train
        )
        self.write_metrics(status="running")
        # a kill after last.pt but before curves.csv was written left it a row short
        run_files.write_curves(self.run_dir, st.history, self.curve_columns)
        return t0

    def log_update(
        self, grad_norm: float, lr: float, t0: float, update_norm: float | None = None
    ) -> None:
        """TensorBoard's train/grad_norm and train/lr after an update (every log_every), and
        train/update_norm (the velocity's norm, before the cap) under ``optim.max_update_norm``."""
        st = self.state
        if st.updates % self.settings.log_every == 0:
            walltime = st.tb_start_walltime + time.perf_counter() - t0
            self.writer.add_scalar("train/grad_norm", grad_norm, st.updates, walltime)
            self.writer.add_scalar("train/lr", lr, st.updates, walltime)
            if update_norm is not None:
                self.writer.add_scalar("train/update_norm", update_norm, st.updates, walltime)

    def validated(
        self, epoch: int, train_nll: float, valid_nll: float, valid_nll_noisy: float | None = None
    ) -> bool | None:
        """Judge an evaluated epoch: None when it diverged (recorded), else whether the
        validation NLL that selects (``trainer.select_on``: the clean one, or
        ``valid_nll_noisy``) is a new best (the caller saves best.pt then). The divergence test
        reads the clean one."""
        st = self.state
        if st.initial_valid_nll is None:
            st.initial_valid_nll = valid_nll
        reason = explosion(train_nll, valid_nll, st.initial_valid_nll, self.settings.diverge_factor)
        if reason is not None:
            self.diverge(epoch, reason)
            return None
        selected, other = valid_nll, valid_nll_noisy
        if self.settings.select_on == "noisy":
            selected, other = other, selected
        if self.other is not None and epoch > 0:
            self._other_improved = self.other.update(other, epoch)
        return epoch > 0 and self.stopper.update(selected, epoch)

    def end_epoch(
        self,
        epoch: int,
        train_nll: float,
        valid_nll: float | None,
        t0: float,
        *,
        best: Callable[[], dict] | None,
        last: Callable[[], dict],
        after_log: Callable[[SummaryWriter], None] | None = None,
        valid_nll_noisy: float | None = None,
        other_best: Callable[[], dict] | None = None,
    ) -> None:
        """Record a finished epoch (:meth:`note_epoch`), then save it (:meth:`save_epoch`)."""
        self.note_epoch(
            epoch, train_nll, valid_nll, t0, after_log=after_log, valid_nll_noisy=valid_nll_noisy
        )
        self.save_epoch(
            best=None if best is None else best(),
            last=last(),
            other_best=None if other_best is None else other_best(),
        )

    def note_epoch(
        self,
        epoch: int,
        train_nll: float,
        valid_nll: float | None,
        t0: float,
        *,
        after_log: Callable[[SummaryWriter], None] | None = None,
        valid_nll_noisy: float | None = None,
    ) -> None:
        """A finished epoch into the state (curves row), TensorBoard and the log.
        ``after_log(writer)``: extras before the flush (TensorBoard samples);
        ``valid_nll_noisy``: the noisy validation NLL, in runs that measure it."""
        st = self.state
        st.epoch = epoch
        st.wall_seconds = time.perf_counter() - t0
        walltime = st.tb_start_walltime + st.wall_seconds
        row = {
            "epoch": epoch,
            "updates": st.updates,
            "wall_seconds": st.wall_seconds,
            "train_nll": train_nll,
            "valid_nll": valid_nll,
        }
        if self.noisy:
            row[NOISY_VALID_COLUMN] = valid_nll_noisy
        st.history.append(row)
        tensorboard_views.add_epoch_nll(
            self.writer, self.nll_tags, train_nll, valid_nll, st.updates, walltime, valid_nll_noisy
        )
        log.info(
            "%sepoch %d  updates %d  train %.4f  valid %s%s  %.1fs",
            self.prefix,
            epoch,
            st.updates,
            train_nll,
            "-" if valid_nll is None else f"{valid_nll:.4f}",
            "" if valid_nll_noisy is None else f" (noisy {valid_nll_noisy:.4f})",
            st.wall_seconds,
        )
        if after_log is not None:
            after_log(self.writer)
        self.writer.flush()

    def save_best(self, best: dict) -> None:
        """checkpoints/best.pt (a new best epoch's weights)."""
        atomic_torch_save(best, self.ckpt_dir / "best.pt")

    def save_last(self, last: dict) -> None:
        """checkpoints/last.pt, then curves.csv from the history."""
        atomic_torch_save(last, self.ckpt_dir / "last.pt")
        run_files.write_curves(self.run_dir, self.state.history, self.curve_columns)

    def save_other_best(self, best: dict) -> None:
        """checkpoints/best_<other_name>.pt (a new best of the other selection)."""
        atomic_torch_save(best, self.other_checkpoint)

    def save_epoch(self, *, best: dict | None, last: dict, other_best: dict | None = None) -> None:
        # best before last: a kill between the two re-runs this epoch and rewrites best.pt
        if best is not None:
            self.save_best(best)
        if other_best is not None:
            self.save_other_best(other_best)
        self.save_last(last)

    def diverge(self, epoch: int, reason: str) -> None:
        log.warning("%srun diverged in epoch %d: %s", self.prefix, epoch, reason)
        self.state.diverged_epoch, self.state.diverged_reason = epoch, reason

    def finish(self, t0: float, finals: dict, *, other_finals: dict | None = None) -> dict:
        """Write the final metrics.json (``finals``: the NLLs at the best checkpoint, or its
        ``failed_reason``; ``other_finals``: those at the other selection's, when kept), the
        hparams, and close the writer; the metrics written."""
        st = self.state
        if st.diverged_epoch is not None:
            status = "diverged"
        elif self.stopper.should_stop:
            status = "early_stopped"
        else:
            status = "completed"
        if "failed_reason" in finals:
            status = "failed"
        st.wall_seconds = time.perf_counter() - t0
        extra = dict(finals)
        if self.other is not None:
            extra[f"{self.other_name}_selection"] = {
                "select_on": self.other_name,
                "best_epoch": self.other.best_epoch or None,
                "best_valid_nll_seen": self.other.best,
                **(other_finals or {}),
            }
        metrics = self.write_metrics(status=status, **extra)
        run_files.log_hparams(
            self.writer,
            {k: v for k, v in self.info.items() if k != "nll_convention"},
            {k: v for k, v in finals.items() if k.endswith("_nll")},
            st.updates,
        )
        self.writer.close()
        log.info(
            "%s%s after %d epochs: train %s valid %s test %s",
            self.prefix,
            status,
            st.epoch,
            *(f"{finals.get(f'{s}_nll', math.nan):.4f}" for s in SPLITS),
        )
        return metrics

    def write_metrics(self, *, status: str, **extra) -> dict:
        st = self.state
        metrics = {
            **self.info,
            "status": status,
            "epochs": st.epoch,
            "updates": st.updates,
            "overflow_updates": st.overflow_updates,
            "wall_seconds": st.wall_seconds,
            "best_epoch": self.stopper.best_epoch or None,
            "best_valid_nll_seen": self.stopper.best,
            "diverged_epoch": st.diverged_epoch,
            "diverged_reason": st.diverged_reason,
            **extra,
        }
        run_files.write_metrics(self.run_dir, metrics)
        return metrics
