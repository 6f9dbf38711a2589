"""The training loop, top to bottom: setup (all config errors surface here), epochs of noisy
updates with clipping, validation with early stopping, checkpoints, and the final evaluation
of train / valid / test at the best checkpoint.

    trainer = Trainer(splits, run_dir=..., seed=1, model_options={"unit": "gru", ...},
                      optim_options={"name": "rmsprop", "lr": 1e-3, ...},
                      settings=TrainerSettings(), run_info={"dataset": "jsb"}, config={...},
                      identity={...})
    metrics = trainer.fit()     # the dict written to metrics.json

One update reads top to bottom in ``Trainer._train_epoch``: the forward at noisy weights
(``noisy_weights``, training/weight_noise.py), the loss (``trainer.objective``: the mean or the
sum of the NLL), the backward, the paper's gradient rescaling (``clip_or_rescue``,
training/clipping.py; none under ``clip_grad_norm: null``), the optimizer and schedule steps.
Each validation measures the clean NLL and, under ``trainer.noisy_valid`` or
``select_on=noisy``, the noisy one; ``select_on`` says which picks the best checkpoint.

A checkpoint is ``Trainer.state_dict()`` (checkpoints/last.pt, everything a resumed run needs)
or its model part (checkpoints/best.pt); ``load_state_dict`` continues exactly where it was.
The run's files, TensorBoard events, early stopping and divergence test are its ``RunRecord``
(training/run_record.py), which the population trainer keeps one of per member.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from gru_repro.config.checks import ConfigError
from gru_repro.config.identity import identity_diff
from gru_repro.data import DataSplits, make_batches
from gru_repro.models import build_model, kernels
from gru_repro.sampling.tensorboard import log_samples
from gru_repro.training.checkpoint import (
    load_checkpoint,
    plain_data,
    restore_rng_state,
    seed_everything,
)
from gru_repro.training.clipping import clip_or_rescue
from gru_repro.training.early_stopping import EarlyStopping
from gru_repro.training.evaluation import NOISY_SUFFIX, SplitEvaluator, noisy_evaluator
from gru_repro.training.metrics import NLLTotals, batch_loss
from gru_repro.training.optim import build_optimization
from gru_repro.training.run_record import RunRecord, describe_run, model_bundle, resume_bundle
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
        self.noise = WeightNoise(
            self.model,
            std=settings.weight_noise,
            seed=self.seed + NOISE_SEED_OFFSET,
            include_head=settings.weight_noise_head,
        )
        self.shuffle_generator = torch.Generator().manual_seed(self.seed + SHUFFLE_SEED_OFFSET)
        self.evaluate = SplitEvaluator(  # evaluate("valid") -> NLLTotals at the current weights
            self.model,
            splits,
            batch_size=settings.eval_batch_size,
            device=settings.device,
            noise=self.noise if settings.eval_with_noise else None,
            noise_seed=self.seed + EVAL_NOISE_SEED_OFFSET,
        )
        self.evaluate_noisy = (  # the released code's noisy monitoring, beside the clean one
            noisy_evaluator(
                self.model,
                splits,
                device=settings.device,
                noise=self.noise,
                noise_seed=self.seed + EVAL_NOISE_SEED_OFFSET,
            )
            if settings.measures_noisy_valid
            else None
        )
        self.info = describe_run(
            run_info,
            self.model,
            model_options=self.model_options,
            optim_options=self.optim_options,
            seed=self.seed,
            settings=settings,
            identity=self.identity,
        )
        self.record = RunRecord(self.run_dir, self.info, settings)
        last = self.ckpt_dir / "last.pt"
        if settings.resume and not settings.force and last.is_file():
            self.load_state_dict(load_checkpoint(last))
            log.info(
                "resumed from %s at epoch %d (%d updates)",
                last,
                self.state.epoch,
                self.state.updates,
            )

    @property
    def state(self) -> RunState:
        return self.record.state

    @property
    def stopper(self) -> EarlyStopping:
        return self.record.stopper

    # ----------------------------------------------------------------------------- the loop
    def fit(self) -> dict:
        s, st, record = self.settings, self.state, self.record
        fresh = record.fresh
        t0 = record.start()
        with kernels.use_setting(s.backend):  # trainer.backend: the units' time loops
            if fresh:
                self._evaluate_epoch(epoch=0, train_nll=self.evaluate("train").frame, t0=t0)
            while not record.stopped and st.epoch < s.max_epochs:
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
                loss = batch_loss(step_nll, batch.mask, s.objective)  # mean or sum (objective)
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
            update_norm = getattr(self.optimizer, "last_update_norm", None)  # capped form only
            self.record.log_update(grad_norm, self.scheduler.get_last_lr()[0], t0, update_norm)
            bar.set_postfix(nll=f"{loss.item():.3f}", gnorm=f"{grad_norm:.2f}")
        return totals.frame  # running mean over the epoch, at the noisy weights

    def _evaluate_epoch(self, epoch: int, train_nll: float, t0: float) -> None:
        valid_nll = self.evaluate("valid").frame
        noisy = None
        if self.evaluate_noisy is not None:  # fresh draws every epoch (evaluation.py)
            noisy = self.evaluate_noisy("valid", stream=epoch).frame
        new_best = self.record.validated(epoch, train_nll, valid_nll, noisy)
        if new_best is not None:  # None: diverged (recorded)
            self._end_epoch(epoch, train_nll, valid_nll, t0, new_best, noisy)

    def _end_epoch(self, epoch, train_nll, valid_nll, t0, new_best: bool, noisy=None) -> None:
        self.record.end_epoch(
            epoch,
            train_nll,
            valid_nll,
            t0,
            best=self.model_checkpoint if new_best else None,
            last=self.state_dict,
            after_log=self._log_samples,
            valid_nll_noisy=noisy,
            other_best=self.model_checkpoint if self.record.take_other_improved() else None,
        )

    def _log_samples(self, writer: SummaryWriter) -> None:
        every = self.settings.sample_every
        if every and self.state.epoch and self.state.epoch % every == 0:
            log_samples(writer, self.model, self.splits.facts, self.state.updates)

    def _diverge(self, epoch: int, reason: str) -> None:
        self.record.diverge(epoch, reason)
        return None

    def _finish(self, t0: float) -> dict:
        # every reported NLL is measured at the best weights, restored into the model here
        # (the other selection's first, when kept, so that the model ends at the best weights)
        other = self.record.other
        other_finals = None
        if other is not None:
            other_finals = self._finals_at(self.record.other_checkpoint, other.best_epoch)
        finals = self._finals_at(self.ckpt_dir / "best.pt", self.stopper.best_epoch)
        return self.record.finish(t0, finals, other_finals=other_finals)

    def _finals_at(self, path: Path, best_epoch: int) -> dict:
        """Every split's NLLs at the weights in ``path`` (loaded into the model), clean and,
        in runs that measure it, noisy."""
        finals = self.evaluate.at_best_checkpoint(path, best_epoch)
        if self.evaluate_noisy is not None and "valid_nll" in finals:  # the weights loaded
            finals.update(self.evaluate_noisy.finals(NOISY_SUFFIX, stream=best_epoch))
        return finals

    # ----------------------------------------------------------------------------- helpers
    def model_checkpoint(self) -> dict:
        """checkpoints/best.pt: the weights and what is needed to rebuild and describe them."""
        return model_bundle(
            self.model.state_dict(),
            config=self.config,
            identity=self.identity,
            model_options=self.model_options,
            splits=self.splits,
            state=self.state,
            seed=self.seed,
        )

    def state_dict(self) -> dict:
        """checkpoints/last.pt: the model checkpoint plus everything a resumed run needs to
        continue exactly (optimizer, schedule, early stopping, noise and every generator);
        plain data and tensors, so ``torch.load(weights_only=True)`` reads it."""
        return resume_bundle(
            self.model_checkpoint(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            stopper=self.stopper,
            weight_noise=self.noise.state_dict(),
            shuffle_generator=self.shuffle_generator,
            state=self.state,
            other_stopper=self.record.other,
        )

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
        if self.record.other is not None and "early_stopping_other" in state:
            self.record.other.load_state_dict(state["early_stopping_other"])
        self.noise.load_state_dict(state["weight_noise"])
        self.shuffle_generator.set_state(state["shuffle_generator"])
        restore_rng_state(state["rng"])
        self.record.state = RunState(**state["run_state"])
