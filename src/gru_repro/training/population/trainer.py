"""The population trainer: P learning-rate candidates of one (data set, unit, seed) trained in
one process, each member an ordinary run.

    trainer = PopulationTrainer(splits, members=[Member(run_dir, lr, config, identity), ...],
                                seed=1, model_options={...}, optim_options={...},
                                settings=TrainerSettings(), run_info={"dataset": "jsb"})
    metrics = trainer.fit()   # one metrics.json dict per member, in member order

The members share the seed, so their single runs start from the same weights, see the same
batches and draw the same weight noise; they differ only in the learning rate. Here one update
is one pass for all of them: one noise draw (broadcast onto the stacked weights), the members'
forward (``PopulationModel.member_step_nll``) and loss (``trainer.objective``), one backward with
each member's own clipping and overflow rescue (none without clipping), one optimizer and
schedule step with a learning rate per member (and each member's own update cap). Each member
keeps its own ``RunRecord`` (training/run_record.py, the single run's bookkeeping): its run
folder, metrics.json, curves.csv, TensorBoard events and checkpoints are what the single run
with its lr writes, and its last.pt is the single run's ``Trainer.state_dict()`` (a single run
resumes it). A member that stops (early stopping, divergence, in or after an epoch) is
finalised at once, as its single run would be, and dropped from the compute.

Resume: ``states`` gives each member's last.pt (all at one update count); ``state_path``, when
given, is the population checkpoint written each epoch before the members' last.pt
(training/population/runs.py reads it back), so a kill between two members' writes never
leaves the population split across epochs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gru_repro.atomic import atomic_path
from gru_repro.config.checks import ConfigError
from gru_repro.config.identity import identity_diff, identity_hash
from gru_repro.data import DataSplits, make_batches
from gru_repro.models import build_model, kernels
from gru_repro.models.population import build_population
from gru_repro.models.recurrent import exact_member_products
from gru_repro.sampling.tensorboard import log_samples
from gru_repro.training.checkpoint import plain_data, restore_rng_state, seed_everything
from gru_repro.training.evaluation import NOISY_SUFFIX, SplitEvaluator, noisy_evaluator
from gru_repro.training.loop import EVAL_NOISE_SEED_OFFSET, NOISE_SEED_OFFSET, SHUFFLE_SEED_OFFSET
from gru_repro.training.metrics import NLLTotals, add_members, batch_loss
from gru_repro.training.population.clipping import backward_and_clip_members
from gru_repro.training.population.evaluation import PopulationEvaluator
from gru_repro.training.population.members import (
    load_member_states,
    member_optimizer_state_dict,
    member_schedule_state_dict,
)
from gru_repro.training.population.noise import PopulationWeightNoise
from gru_repro.training.population.optim import build_population_optimization
from gru_repro.training.run_record import RunRecord, describe_run, model_bundle, resume_bundle
from gru_repro.training.run_state import RunState
from gru_repro.training.settings import TrainerSettings
from gru_repro.training.weight_noise import WeightNoise, noisy_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One learning-rate candidate: where its run folder is and what run it is."""

    run_dir: Path
    lr: float
    config: dict  # the resolved config (checkpoints' "config")
    identity: dict  # gru_repro.config.identity: its single run's identity

    @property
    def label(self) -> str:
        return f"lr={self.lr}"


class PopulationTrainer:
    def __init__(
        self,
        splits: DataSplits,
        *,
        members: Sequence[Member],
        seed: int,
        model_options: dict,
        optim_options: dict,
        settings: TrainerSettings,
        run_info: dict | None = None,
        states: Sequence[dict | None] | None = None,
        state_path: str | Path | None = None,
        fused: bool | None = None,
    ) -> None:
        if not members:
            raise ValueError("a population needs at least one member")
        self.splits, self.seed, self.settings = splits, int(seed), settings
        self.members = list(members)
        self.model_options = dict(model_options)
        self.optim_options = {k: v for k, v in optim_options.items() if k != "lr"}
        self.state_path = None if state_path is None else Path(state_path)

        seed_everything(self.seed)  # every member's single run starts from these weights
        model = build_model(
            input_size=splits.input_size, output_size=splits.output_size, **self.model_options
        ).to(settings.device)
        self.population = build_population(
            [model] * len(self.members), fused=fused, unit=self.model_options["unit"]
        )
        self.updates_per_epoch = math.ceil(len(splits.train) / settings.batch_size)
        params = list(self.population.parameters())
        self.optimizer, self.schedule = build_population_optimization(
            params,
            lrs=[m.lr for m in self.members],
            optim_options=self.optim_options,
            total_updates=settings.max_epochs * self.updates_per_epoch,
        )
        self.noise = PopulationWeightNoise(
            self.population,
            std=settings.weight_noise,
            seed=self.seed + NOISE_SEED_OFFSET,
            include_head=settings.weight_noise_head,
        )
        self.shuffle_generator = torch.Generator().manual_seed(self.seed + SHUFFLE_SEED_OFFSET)
        # the final NLLs: the single run's own evaluator, on a single model at the best weights
        single = self.population.single_model()
        single_noise = WeightNoise(
            single, std=settings.weight_noise, seed=0, include_head=settings.weight_noise_head
        )
        self.final_evaluator = SplitEvaluator(
            single,
            splits,
            batch_size=settings.eval_batch_size,
            device=settings.device,
            noise=single_noise if settings.eval_with_noise else None,
            noise_seed=self.seed + EVAL_NOISE_SEED_OFFSET,
        )
        self.evaluate = PopulationEvaluator(
            self.population,
            self.final_evaluator.batches,
            noise=self.noise if settings.eval_with_noise else None,
            noise_seed=self.seed + EVAL_NOISE_SEED_OFFSET,
        )
        # the noisy validation NLL beside the clean one (trainer.noisy_valid / select_on=noisy):
        # the single run's noisy evaluator, its batches of one sequence for the members
        self.final_noisy_evaluator = self.evaluate_noisy = None
        if settings.measures_noisy_valid:
            self.final_noisy_evaluator = noisy_evaluator(
                single,
                splits,
                device=settings.device,
                noise=single_noise,
                noise_seed=self.seed + EVAL_NOISE_SEED_OFFSET,
            )
            self.evaluate_noisy = PopulationEvaluator(
                self.population,
                self.final_noisy_evaluator.batches,
                noise=self.noise,
                noise_seed=self.seed + EVAL_NOISE_SEED_OFFSET,
            )
        self.records = [
            RunRecord(
                m.run_dir,
                describe_run(
                    {**(run_info or {}), "run_dir": str(m.run_dir)},
                    single,
                    model_options=self.model_options,
                    optim_options={**optim_options, "lr": m.lr},
                    seed=self.seed,
                    settings=settings,
                    identity=plain_data(m.identity),
                ),
                settings,
                label=m.label,
            )
            for m in self.members
        ]
        self.results: dict[int, dict] = {}  # member index (in ``members``) -> final metrics
        self.alive = list(range(len(self.members)))  # member indices, row order in the population
        if states is not None and any(s is not None for s in states):
            self.load_member_states(states)

    # ----------------------------------------------------------------------------- the loop
    def fit(self) -> list[dict]:
        """Train every member to its end; each member's final metrics, in member order."""
        with (
            kernels.use_setting(self.settings.backend),  # trainer.backend: the time loops
            exact_member_products(self.settings.population_exact),  # trainer.population_exact
        ):
            return self._fit()

    def _fit(self) -> list[dict]:
        s = self.settings
        fresh = [self.records[i].fresh for i in self.alive]
        self.t0 = {i: self.records[i].start() for i in self.alive}
        if any(fresh):
            train = self.evaluate("train")
            self._evaluate_epoch(0, [t.frame for t in train], only=fresh)
        # a member resumed after it stopped (killed before its final metrics) ends here, as its
        # single run's loop would not train it again
        stopped = [i for i in self.alive if self.records[i].stopped]
        for i in stopped:
            self._finalise(i)
        if stopped:
            self._keep([i for i in self.alive if i not in stopped])
        epoch = self.records[self.alive[0]].state.epoch if self.alive else s.max_epochs
        while self.alive and epoch < s.max_epochs:
            epoch += 1
            train_nll = self._train_epoch(epoch)
            if not self.alive:
                break
            if s.eval_train:
                train_nll = [t.frame for t in self.evaluate("train")]
            if epoch % s.eval_every == 0 or epoch == s.max_epochs:
                self._evaluate_epoch(epoch, train_nll)
            else:
                no_valid = [None] * len(train_nll)
                self._end_epoch(epoch, train_nll, no_valid, [False] * len(train_nll))
        for i in list(self.alive):
            self._finalise(i)
        self._keep([])
        return [self.results[i] for i in range(len(self.members))]

    def _train_epoch(self, epoch: int) -> list[float]:
        """One epoch of updates; the running train NLL of each member still alive after it."""
        s = self.settings
        self.population.train()
        batches = make_batches(
            self.splits.train,
            s.batch_size,
            shuffle=True,
            generator=self.shuffle_generator,
            bucket=s.bucket,
        )
        totals = {i: NLLTotals() for i in self.alive}
        bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not s.progress)
        for batch in bar:
            batch = batch.to(s.device)
            # One update of every member: forward at the shared noisy weights, backward, each
            # member's clip (and rescue) inside the block, then one step with each member's lr.
            with noisy_weights(self.population, self.noise.draw()):
                step_nll = self.population.member_step_nll(batch)  # (P, T, B)
                losses = torch.stack([batch_loss(nll, batch.mask, s.objective) for nll in step_nll])
                finite = torch.isfinite(losses.detach()).tolist()
                norms, redone = backward_and_clip_members(
                    losses, self.optimizer.params, s.clip_grad_norm
                )
            stopped = []
            for row, i in enumerate(self.alive):
                st, update = self.records[i].state, self.records[i].state.updates + 1
                if not finite[row]:
                    self.records[i].diverge(epoch, f"non-finite training loss at update {update}")
                    stopped.append(i)
                    continue
                st.overflow_updates += redone[row] > 0
                if not math.isfinite(norms[row]):
                    self.records[i].diverge(epoch, f"non-finite gradient norm at update {update}")
                    stopped.append(i)
            self.optimizer.step()  # a stopping member's row is dropped below, never read again
            self.schedule.step()
            lrs = self.schedule.last_lrs()
            updates = getattr(self.optimizer, "last_update_norms", None)  # capped form only
            kept = [row for row, i in enumerate(self.alive) if i not in stopped]
            kept_nll = step_nll[kept] if stopped else step_nll  # no copy while all train on
            add_members([totals[self.alive[r]] for r in kept], kept_nll, batch.lengths)
            for row in kept:
                i = self.alive[row]
                record = self.records[i]
                record.state.updates += 1
                update_norm = None if updates is None else updates[row]
                record.log_update(norms[row], lrs[row], self.t0[i], update_norm)
            if stopped:
                for i in stopped:
                    self._finalise(i)
                self._keep([i for i in self.alive if i not in stopped])
                if not self.alive:
                    break
            bar.set_postfix(members=len(self.alive))
        return [totals[i].frame for i in self.alive]

    def _evaluate_epoch(self, epoch: int, train_nll: list[float], only=None) -> None:
        """Validate every member (``only``: a mask of the members to record), record the
        epoch, then finalise and drop those that stopped."""
        valid = [t.frame for t in self.evaluate("valid")]
        noisy = [None] * len(valid)
        if self.evaluate_noisy is not None:
            noisy = [t.frame for t in self.evaluate_noisy("valid", stream=epoch)]
        recorded, bests = [], []
        for row, i in enumerate(self.alive):
            if only is not None and not only[row]:
                continue
            new_best = self.records[i].validated(epoch, train_nll[row], valid[row], noisy[row])
            if new_best is not None:  # None: diverged (recorded)
                recorded.append(row)
                bests.append(new_best)
        self._end_epoch(
            epoch,
            [train_nll[r] for r in recorded],
            [valid[r] for r in recorded],
            bests,
            rows=recorded,
            valid_noisy=[noisy[r] for r in recorded],
        )

    def _end_epoch(self, epoch, train_nll, valid_nll, bests, rows=None, valid_noisy=None) -> None:
        """Record the epoch for the members at ``rows`` (all by default): history and logs, the
        new bests' best.pt, the population checkpoint, then each member's last.pt and curves.
        Members that stopped are finalised and dropped after."""
        rows = list(range(len(self.alive))) if rows is None else rows
        valid_noisy = [None] * len(rows) if valid_noisy is None else valid_noisy
        for row, train, valid, noisy in zip(rows, train_nll, valid_nll, valid_noisy, strict=True):
            i = self.alive[row]
            samples = self._sampler(row) if self._samples_due(epoch) else None
            self.records[i].note_epoch(
                epoch, train, valid, self.t0[i], after_log=samples, valid_nll_noisy=noisy
            )
        lasts = {row: self.member_state_dict(row) for row in rows}
        for row, best in zip(rows, bests, strict=True):
            record = self.records[self.alive[row]]
            if best:
                record.save_best(self._model_bundle(row))
            if record.take_other_improved():
                record.save_other_best(self._model_bundle(row))
        self._save_population(lasts)
        for row in rows:
            self.records[self.alive[row]].save_last(lasts[row])
        stopped = [i for i in self.alive if self.records[i].stopped]
        for i in stopped:
            self._finalise(i)
        if stopped:
            self._keep([i for i in self.alive if i not in stopped])

    def _samples_due(self, epoch: int) -> bool:
        every = self.settings.sample_every
        return bool(every and epoch and epoch % every == 0)

    def _sampler(self, row: int):
        """TensorBoard samples of the member at ``row``, as its single run logs them: from a
        single model holding its weights."""

        def member_samples(writer) -> None:
            model = self.final_evaluator.model
            model.load_state_dict(self.population.member_state_dict(row))
            updates = self.records[self.alive[row]].state.updates
            log_samples(writer, model, self.splits.facts, updates)

        return member_samples

    def _finalise(self, i: int) -> None:
        """Member ``i``'s final NLLs at its best checkpoint (the single run's evaluator) and
        metrics.json; it trains no further."""
        record = self.records[i]
        other_finals = None
        if record.other is not None:  # the other selection's, as the single run measures it
            other_finals = self._finals_at(record.other_checkpoint, record.other.best_epoch)
        finals = self._finals_at(record.ckpt_dir / "best.pt", record.stopper.best_epoch)
        self.results[i] = record.finish(self.t0[i], finals, other_finals=other_finals)

    def _finals_at(self, path: Path, best_epoch: int) -> dict:
        """The single run's ``Trainer._finals_at``: clean and (when measured) noisy NLLs."""
        finals = self.final_evaluator.at_best_checkpoint(path, best_epoch)
        if self.final_noisy_evaluator is not None and "valid_nll" in finals:  # weights loaded
            finals.update(self.final_noisy_evaluator.finals(NOISY_SUFFIX, stream=best_epoch))
        return finals

    def _keep(self, members: list[int]) -> None:
        """Keep only ``members`` (indices into ``self.members``) in the compute."""
        rows = [self.alive.index(i) for i in members]
        if rows:
            self.population.keep(rows)
            self.optimizer.keep(rows)
            self.optimizer.params = list(self.population.parameters())  # the kept rows
        self.alive = list(members)
        if not self.alive and self.state_path is not None:
            self.state_path.unlink(missing_ok=True)  # everyone finished: nothing to resume

    # ----------------------------------------------------------------------------- state
    def _model_bundle(self, row: int) -> dict:
        i = self.alive[row]
        m, record = self.members[i], self.records[i]
        return model_bundle(
            self.population.member_state_dict(row),
            config=plain_data(m.config),
            identity=plain_data(m.identity),
            model_options=self.model_options,
            splits=self.splits,
            state=record.state,
            seed=self.seed,
        )

    def member_state_dict(self, row: int) -> dict:
        """The member at ``row``'s checkpoints/last.pt: its single run's
        ``Trainer.state_dict()``."""
        record = self.records[self.alive[row]]
        return resume_bundle(
            self._model_bundle(row),
            optimizer=member_optimizer_state_dict(self.optimizer, row),
            scheduler=member_schedule_state_dict(self.schedule, row),
            stopper=record.stopper,
            weight_noise=self.noise.state_dict(),
            shuffle_generator=self.shuffle_generator,
            state=record.state,
            other_stopper=record.other,
        )

    def _save_population(self, lasts: dict[int, dict]) -> None:
        """The population checkpoint: every recorded member's last.pt, keyed by identity hash
        (written before the members' own, see the module docstring)."""
        if self.state_path is None or not lasts:
            return
        entries = {
            identity_hash(plain_data(self.members[self.alive[row]].identity)): state
            for row, state in lasts.items()
        }
        # atomic, not fsynced: it guards against a killed process (the page cache keeps it);
        # after an OS crash the members' own (fsynced) last.pt are the fallback
        with atomic_path(self.state_path) as tmp:
            torch.save({"members": entries}, tmp)

    def load_member_states(self, states: Sequence[dict | None]) -> None:
        """Continue from each member's last.pt (``Trainer.state_dict()`` form, all at one
        update count; None for a member that starts fresh, only when all others are at update
        0). Refuses a state of another identity."""
        if len(states) != len(self.members):
            raise ValueError(f"{len(states)} states for {len(self.members)} members")
        for m, state in zip(self.members, states, strict=True):
            saved = None if state is None else state.get("identity")
            if saved is not None and saved != plain_data(m.identity):
                raise ConfigError(
                    f"{m.run_dir}: checkpoint of another run "
                    f"({'; '.join(identity_diff(saved, plain_data(m.identity)))}); "
                    "trainer.force=true retrains"
                )
        given = [s for s in states if s is not None]
        counts = {int(s["run_state"]["updates"]) for s in given}
        if len(counts) != 1 or (len(given) < len(states) and counts != {0}):
            raise ValueError(f"members' states are at different update counts {sorted(counts)}")
        shared = given[0]
        for key in ("shuffle_generator",):
            if not all(torch.equal(s[key], shared[key]) for s in given):
                raise ValueError(f"members' {key} states differ: they cannot train together")
        if not all(
            torch.equal(s["weight_noise"]["generator"], shared["weight_noise"]["generator"])
            for s in given
        ):
            raise ValueError("members' weight-noise streams differ: they cannot train together")
        for record, state in zip(self.records, states, strict=True):
            if state is not None:
                record.stopper.load_state_dict(state["early_stopping"])
                if record.other is not None and "early_stopping_other" in state:
                    record.other.load_state_dict(state["early_stopping_other"])
                record.state = RunState(**state["run_state"])
        if len(given) < len(states):
            return  # all at update 0: the fresh weights and optimizer are everyone's
        self.population.load_member_state_dicts([s["model"] for s in states])
        load_member_states(
            self.optimizer,
            self.schedule,
            [s["optimizer"] for s in states],
            [s["scheduler"] for s in states],
        )
        self.noise.load_state_dict(shared["weight_noise"])
        self.shuffle_generator.set_state(shared["shuffle_generator"])
        restore_rng_state(shared["rng"])
        log.info(
            "population of %d resumed at epoch %d (%d updates)",
            len(states),
            self.records[0].state.epoch,
            self.records[0].state.updates,
        )
