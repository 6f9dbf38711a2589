"""The population model: P models' parameters stacked under the single model's names; each
member's step NLL and gradient are its single model's bit for bit (the fused population with
exact products, as ``trainer.population_exact`` asks); members are dropped and read out as
single-model state dicts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gru_repro.data import make_batches
from gru_repro.data.synthetic import load_synthetic
from gru_repro.models import build_model
from gru_repro.models.population import FUSED_POPULATIONS, FunctionalPopulation, build_population
from gru_repro.models.recurrent import exact_member_products
from gru_repro.training.metrics import batch_loss


def _models(unit: str, members: int, dtype) -> list:
    models = []
    for k in range(members):
        torch.manual_seed(k)  # different weights per member: rows cannot be confused
        models.append(build_model(unit, 24, 24, hidden_size=7).to(dtype))
    return models


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_each_members_nll_and_gradient_are_its_single_models(unit, dtype) -> None:
    splits = load_synthetic(n_train=6, n_valid=2, n_test=2, min_length=5, max_length=30)
    batch = make_batches(splits.train, 6, shuffle=False)[0]
    batch = dataclasses.replace(
        batch, inputs=batch.inputs.to(dtype), targets=batch.targets.to(dtype)
    )
    models = _models(unit, 3, dtype)
    population = build_population(models)
    with exact_member_products():
        step_nll = population.member_step_nll(batch)
        assert step_nll.shape == (3, *batch.mask.shape)
        torch.stack([batch_loss(nll, batch.mask) for nll in step_nll]).sum().backward()
    for k, model in enumerate(models):
        single = model.step_nll(batch)
        batch_loss(single, batch.mask).backward()
        assert torch.equal(step_nll[k], single)
        for (name, p), (stacked_name, q) in zip(
            model.named_parameters(), population.named_parameters(), strict=True
        ):
            assert name == stacked_name and torch.equal(q.grad[k], p.grad), name


def test_member_state_dicts_keep_and_load() -> None:
    models = _models("gru", 4, torch.float32)
    population = FunctionalPopulation.stack(models)
    for k, model in enumerate(models):
        state = population.member_state_dict(k)
        assert list(state) == list(model.state_dict())
        assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())
    before = list(population.parameters())
    population.keep([3, 1])
    assert population.members == 2 and all(p.shape[0] == 2 for p in population.parameters())
    assert not any(p is q for p, q in zip(population.parameters(), before, strict=True))
    assert torch.equal(population.member_state_dict(0)["rnn.weight_hh"], models[3].rnn.weight_hh)
    population.load_member_state_dicts([models[0].state_dict(), models[2].state_dict()])
    assert torch.equal(
        population.member_state_dict(1)["head.linear.weight"], models[2].head.linear.weight
    )
    single = population.single_model()
    assert all(
        torch.equal(a, b)
        for a, b in zip(single.state_dict().values(), models[0].state_dict().values(), strict=True)
    )
    with pytest.raises(ValueError, match="distinct indices"):
        population.keep([0, 0])


def test_members_must_share_the_architecture() -> None:
    with pytest.raises(ValueError, match="not the architecture of member 0"):
        build_population(
            [build_model("gru", 24, 24, hidden_size=7), build_model("gru", 24, 24, hidden_size=8)]
        )


def test_build_population_picks_a_registered_fused_implementation(monkeypatch) -> None:
    models = _models("gru", 2, torch.float32)
    monkeypatch.delitem(FUSED_POPULATIONS, "gru", raising=False)
    assert isinstance(build_population(models), FunctionalPopulation)
    with pytest.raises(ValueError, match="no fused population implementation for unit 'gru'"):
        build_population(models, fused=True)

    class Fused(FunctionalPopulation):
        pass

    monkeypatch.setitem(FUSED_POPULATIONS, "gru", Fused)
    assert type(build_population(models)) is Fused
    assert type(build_population(models, fused=False)) is FunctionalPopulation
