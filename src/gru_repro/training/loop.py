"""The training loop, top to bottom: setup (all config errors surface here), epochs of noisy
updates with clipping, validation with early stopping, checkpoints, and the final evaluation
of train / valid / test at the best checkpoint.

    trainer = Trainer(splits, run_dir=..., seed=1, model_options={"unit": "gru", ...},
                      optim_options={"name": "rmsprop", "lr": 1e-3, ...},
                      settings=TrainerSettings(), run_info={"dataset": "jsb"}, config={...},
                      identity={...})
    metrics = trainer.fit()     # the dict written to metrics.json

One update reads top to bottom in ``Trainer._train_epoch``: the forward at noisy weights
(``noisy_weights``, training/weight_noise.py), the backward, the paper's gradient rescaling
(``clip_or_rescue``, training/clipping.py), the optimizer and schedule steps.

A checkpoint is ``Trainer.state_dict()`` (checkpoints/last.pt, everything a resumed run needs)
or its model part (checkpoints/best.pt); ``load_state_dict`` continues exactly where it was.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from gru_repro.atomic import atomic_torch_save, remove_stale_temp_files
from gru_repro.config.checks import ConfigError
from gru_repro.config.identity import identity_diff, identity_hash
from gru_repro.data import SPLITS, DataSplits, make_batches
from gru_repro.models import build_model, kernels
from gru_repro.provenance import git_commit, machine_description
from gru_repro.sampling.tensorboard import log_samples
from gru_repro.training import run_files, tensorboard_views
from gru_repro.training.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    plain_data,
    restore_rng_state,
    seed_everything,
)
from gru_repro.training.clipping import clip_or_rescue
from gru_repro.training.early_stopping import EarlyStopping, explosion
from gru_repro.training.evaluation import SplitEvaluator
from gru_repro.training.metrics import NLL_CONVENTION, NLLTotals, batch_loss
from gru_repro.training.optim import build_optimization
from gru_repro.training.run_state import RunState
from gru_repro.training.settings import TrainerSettings
from gru_repro.training.weight_noise import WeightNoise, noisy_weights

log = logging.getLogger(__name__)

# Offsets of the run's generators from its seed, so that model init, shuffling, weight noise and
# evaluation noise draw independent streams.
SHUFFLE_SEED_OFFSET, NOISE_SEED_OFFSET, EVAL_NOISE_SEED_OFFSET = 1, 2, 3


class Trainer:
    def __init__(
        self,
        splits: DataSplits,
        *,
        run_dir: str | Path,
        seed: int,
        model_options: dict,
        optim_options: dict,
        settings: TrainerSettings,
        run_info: dict | None = None,
        config: dict | None = None,
        identity: dict | None = None,
    ) -> None:
        self.splits, self.seed, self.settings = splits, int(seed), settings
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.config = plain_data(config or {})
        # what makes this run this run (gru_repro.config.identity); the config when not given
        self.identity = plain_data(identity if identity is not None else self.config)
        self.model_options = dict(model_options)
        self.optim_options = dict(optim_options)
        seed_everything(self.seed)
        self.model = build_model(
            input_size=splits.input_size, output_size=splits.output_size, **self.model_options
        ).to(settings.device)
        self.trained_parameters = list(self.model.parameters())
        self.updates_per_epoch = math.ceil(len(splits.train) / settings.batch_size)
        self.optimizer, self.scheduler = build_optimization(
            self.trained_parameters,
            self.optim_options,
            total_updates=settings.max_epochs * self.updates_per_epoch,
        )
        self.stopper = EarlyStopping(settings.patience, settings.min_delta)
        self.noise = WeightNoise(
            self.model,
            std=settings.weight_noise,
            seed=self.seed + NOISE_SEED_OFFSET,
            include_head=settings.weight_noise_head,
        )
        self.shuffle_generator = torch.Generator().manual_seed(self.seed + SHUFFLE_SEED_OFFSET)
        self.state = RunState()
        self.evaluate = SplitEvaluator(  # evaluate("valid") -> NLLTotals at the current weights
            self.model,
            splits,
            batch_size=settings.eval_batch_size,
            device=settings.device,
            noise=self.noise if settings.eval_with_noise else None,
            noise_seed=self.seed + EVAL_NOISE_SEED_OFFSET,
        )
        self.info = {
            **(run_info or {}),
            "unit": self.model_options.get("unit"),
            "hidden_size": getattr(self.model.rnn, "hidden_size", None),
            "n_params_recurrent": sum(p.numel() for p in self.model.rnn.parameters()),
            "n_params_total": sum(p.numel() for p in self.model.parameters()),
            "lr": self.optim_options["lr"],
            "optim": self.optim_options["name"],
            "seed": self.seed,
            "batch_size": settings.batch_size,
            "max_epochs": settings.max_epochs,
            "patience": settings.patience,  # the reports flag runs still improving at the budget
            "eval_every": settings.eval_every,
            "weight_noise": settings.weight_noise,
            "git_commit": git_commit(),
            "machine": machine_description(),  # where it ran (the last session, if resumed)
            "device": str(settings.device),
            **self._loops_info(),
            "nll_convention": NLL_CONVENTION,
            "identity": self.identity,
            "identity_hash": identity_hash(self.identity),
        }
        last = self.ckpt_dir / "last.pt"
        if settings.resume and not settings.force and last.is_file():
            self.load_state_dict(load_checkpoint(last))
            log.info(
                "resumed from %s at epoch %d (%d updates)",
                last,
                self.state.epoch,
                self.state.updates,
            )

    def _loops_info(self) -> dict:
        """Which time loops and recurrent products the run uses (trainer.backend; a config
        error now, at setup, when it asks for C++ loops that cannot be built here)."""
        device = self.settings.device
        with kernels.use_setting(self.settings.backend):
            return {
                "loops": kernels.loops_in_use(device),  # cpp or python (models/kernels.py)
                "recurrent_matmul": kernels.recurrent_matmul_in_use(device),  # packed or torch
            }

    # ----------------------------------------------------------------------------- the loop
    def fit(self) -> dict:
        s, st = self.settings, self.state
        t0 = time.perf_counter() - st.wall_seconds
        if st.tb_start_walltime is None:
            st.tb_start_walltime = time.time()
        if (
            st.epoch == 0 and st.initial_valid_nll is None
        ):  # a fresh start (or trainer.force): no stale checkpoint may survive
            for name in ("best.pt", "last.pt"):
                (self.ckpt_dir / name).unlink(missing_ok=True)
        remove_stale_temp_files(self.run_dir, recursive=True)  # temp files of killed writers
        self.writer = SummaryWriter(str(self.run_dir), purge_step=st.updates)
        self.nll_tags = tensorboard_views.start(self.writer, self.info, eval_train=s.eval_train)
        self._write_metrics(status="running")
        # a kill after last.pt but before curves.csv was written left it a row short
        run_files.write_curves(self.run_dir, st.history)

        with kernels.use_setting(s.backend):  # trainer.backend: the units' time loops
            if st.epoch == 0 and st.initial_valid_nll is None:
                self._evaluate_epoch(epoch=0, train_nll=self.evaluate("train").frame, t0=t0)
            while (
                st.diverged_epoch is None
                and st.epoch < s.max_epochs
                and not self.stopper.should_stop
            ):
                epoch = st.epoch + 1
                train_nll = self._train_epoch(epoch, t0)
                if train_nll is None:
                    break  # diverged inside the epoch; recorded in state
                if s.eval_train:
                    train_nll = self.evaluate("train").frame
                if epoch % s.eval_every == 0 or epoch == s.max_epochs:
                    self._evaluate_epoch(epoch, train_nll, t0)
                else:
                    self._end_epoch(epoch, train_nll, None, t0, new_best=False)
            return self._finish(t0)

    def _train_epoch(self, epoch: int, t0: float) -> float | None:
        s, st = self.settings, self.state
        self.model.train()
        batches = make_batches(
            self.splits.train,
            s.batch_size,
            shuffle=True,
            generator=self.shuffle_generator,
            bucket=s.bucket,
        )
        totals = NLLTotals()
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not s.progress)
        for batch in bar:
            batch, update = batch.to(s.device), st.updates + 1
            # One update: forward at noisy weights, backward, clip, step. The clip stays in the
            # block: an overflowing gradient is recomputed through the same noisy graph.
            with noisy_weights(self.model, self.noise.draw()):  # one draw for this update
                step_nll = self.model.step_nll(batch)  # (T, B) nats, 0 where padded
                loss = batch_loss(step_nll, batch.mask)  # mean per predicted step
                if not torch.isfinite(loss):
                    return self._diverge(epoch, f"non-finite training loss at update {update}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward(retain_graph=True)  # the graph is kept for clip_or_rescue
                grad_norm, redone = clip_or_rescue(loss, self.trained_parameters, s.clip_grad_norm)
            st.overflow_updates += redone > 0  # backward redone on a scaled loss (clipping.py)
            if not math.isfinite(grad_norm):
                return self._diverge(epoch, f"non-finite gradient norm at update {update}")
            self.optimizer.step()
            self.scheduler.step()
            st.updates = update
            totals.add(step_nll, batch.lengths)
            if st.updates % s.log_every == 0:
                walltime = st.tb_start_walltime + time.perf_counter() - t0
                self.writer.add_scalar("train/grad_norm", grad_norm, st.updates, walltime)
                self.writer.add_scalar(
                    "train/lr", self.scheduler.get_last_lr()[0], st.updates, walltime
                )
            bar.set_postfix(nll=f"{loss.item():.3f}", gnorm=f"{grad_norm:.2f}")
        return totals.frame  # running mean over the epoch, at the noisy weights

    def _evaluate_epoch(self, epoch: int, train_nll: float, t0: float) -> None:
        st = self.state
        valid_nll = self.evaluate("valid").frame
        if st.initial_valid_nll is None:
            st.initial_valid_nll = valid_nll
        reason = explosion(train_nll, valid_nll, st.initial_valid_nll, self.settings.diverge_factor)
        if reason is not None:
            self._diverge(epoch, reason)
            return
        new_best = epoch > 0 and self.stopper.update(valid_nll, epoch)
        self._end_epoch(epoch, train_nll, valid_nll, t0, new_best)

    def _end_epoch(self, epoch, train_nll, valid_nll, t0, new_best: bool) -> None:
        st = self.state
        st.epoch = epoch
        st.wall_seconds = time.perf_counter() - t0
        walltime = st.tb_start_walltime + st.wall_seconds
        st.history.append(
            {
                "epoch": epoch,
                "updates": st.updates,
                "wall_seconds": st.wall_seconds,
                "train_nll": train_nll,
                "valid_nll": valid_nll,
            }
        )
        tensorboard_views.add_epoch_nll(
            self.writer, self.nll_tags, train_nll, valid_nll, st.updates, walltime
        )
        log.info(
            "epoch %d  updates %d  train %.4f  valid %s  %.1fs",
            epoch,
            st.updates,
            train_nll,
            "-" if valid_nll is None else f"{valid_nll:.4f}",
            st.wall_seconds,
        )
        if self.settings.sample_every and epoch and epoch % self.settings.sample_every == 0:
            log_samples(self.writer, self.model, self.splits.facts, st.updates)
        self.writer.flush()
        # best before last: a kill between the two re-runs this epoch and rewrites best.pt
        if new_best:
            atomic_torch_save(self.model_checkpoint(), self.ckpt_dir / "best.pt")
        atomic_torch_save(self.state_dict(), self.ckpt_dir / "last.pt")
        run_files.write_curves(self.run_dir, st.history)

    def _diverge(self, epoch: int, reason: str) -> None:
        log.warning("run diverged in epoch %d: %s", epoch, reason)
        self.state.diverged_epoch, self.state.diverged_reason = epoch, reason
        return None

    def _finish(self, t0: float) -> dict:
        st = self.state
        if st.diverged_epoch is not None:
            status = "diverged"
        elif self.stopper.should_stop:
            status = "early_stopped"
        else:
            status = "completed"
        # every reported NLL is measured at the best weights, restored into the model here
        finals = self.evaluate.at_best_checkpoint(
            self.ckpt_dir / "best.pt", self.stopper.best_epoch
        )
        if "failed_reason" in finals:
            status = "failed"
        st.wall_seconds = time.perf_counter() - t0
        metrics = self._write_metrics(status=status, **finals)
        log_step = st.updates
        run_files.log_hparams(
            self.writer,
            {k: v for k, v in self.info.items() if k != "nll_convention"},
            {k: v for k, v in finals.items() if k.endswith("_nll")},
            log_step,
        )
        self.writer.close()
        log.info(
            "%s after %d epochs: train %s valid %s test %s",
            status,
            st.epoch,
            *(f"{finals.get(f'{s}_nll', math.nan):.4f}" for s in SPLITS),
        )
        return metrics

    # ----------------------------------------------------------------------------- helpers
    def _write_metrics(self, *, status: str, **extra) -> dict:
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

    def model_checkpoint(self) -> dict:
        """checkpoints/best.pt: the weights and what is needed to rebuild and describe them."""
        return {
            "model": self.model.state_dict(),
            "config": self.config,
            "identity": self.identity,
            "model_options": plain_data(self.model_options),
            "input_size": self.splits.input_size,
            "output_size": self.splits.output_size,
            "data_info": plain_data(self.splits.facts.as_plain()),
            "epoch": self.state.epoch,
            "updates": self.state.updates,
            "seed": self.seed,
        }

    def state_dict(self) -> dict:
        """checkpoints/last.pt: the model checkpoint plus everything a resumed run needs to
        continue exactly (optimizer, schedule, early stopping, noise and every generator);
        plain data and tensors, so ``torch.load(weights_only=True)`` reads it."""
        return {
            **self.model_checkpoint(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.stopper.state_dict(),
            "weight_noise": self.noise.state_dict(),
            "shuffle_generator": self.shuffle_generator.get_state(),
            "rng": capture_rng_state(),
            "run_state": plain_data(dataclasses.asdict(self.state)),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state_dict()``; refuses the state of a run with another identity."""
        saved = state.get("identity")
        if saved is not None and saved != self.identity:
            raise ConfigError(
                f"{self.run_dir}: checkpoint of another run "
                f"({'; '.join(identity_diff(saved, self.identity))}); trainer.force=true retrains"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stopper.load_state_dict(state["early_stopping"])
        self.noise.load_state_dict(state["weight_noise"])
        self.shuffle_generator.set_state(state["shuffle_generator"])
        restore_rng_state(state["rng"])
        self.state = RunState(**state["run_state"])
