"""Per-split NLLs of every member of a population, as each single run measures its own
(training/evaluation.py): the same fixed evaluation batches, clean weights or the same fixed
weight-noise stream (one draw per batch, shared by the members as their single runs draw the
same values)."""

from __future__ import annotations

import torch

from gru_repro.models.population import PopulationModel
from gru_repro.training.evaluation import noise_stream_seed
from gru_repro.training.metrics import NLLTotals, add_members
from gru_repro.training.population.noise import PopulationWeightNoise
from gru_repro.training.weight_noise import noisy_weights


class PopulationEvaluator:
    """``evaluator(split)``: one ``NLLTotals`` per member of ``population``, as it is now.

    ``batches``: {split: evaluation batches on the device} (a ``SplitEvaluator``'s, so the
    grouping is the single run's); ``noise`` (active) replays the stream seeded by
    ``noise_seed`` on every call.
    """

    def __init__(
        self,
        population: PopulationModel,
        batches: dict[str, list],
        *,
        noise: PopulationWeightNoise | None = None,
        noise_seed: int = 0,
    ) -> None:
        self.population, self.batches = population, batches
        self.noise, self.noise_seed = noise, int(noise_seed)

    @torch.no_grad()
    def __call__(self, split: str, stream: int = 0) -> list[NLLTotals]:
        """``stream``: the single run's ``SplitEvaluator`` noise stream (one per epoch)."""
        population = self.population
        generator = None
        if self.noise is not None and self.noise.active:
            generator = torch.Generator().manual_seed(noise_stream_seed(self.noise_seed, stream))
        was_training = population.training
        population.eval()
        totals = [NLLTotals() for _ in range(population.members)]
        try:
            for batch in self.batches[split]:
                draw = self.noise.draw(generator) if generator is not None else {}
                with noisy_weights(population, draw):  # broadcast onto every member's row
                    step_nll = population.member_step_nll(batch)  # (P, T, B)
                add_members(totals, step_nll, batch.lengths)
        finally:
            population.train(was_training)
        return totals
