"""Weight noise for a stacked model: every member gets the single run's draw, bit for bit."""

from __future__ import annotations

import pytest
import torch
from population_cases import StackedParameters, single_models

from gru_repro.training.population import PopulationWeightNoise, noisy_member_parameter_names
from gru_repro.training.weight_noise import WeightNoise, noisy_parameter_names


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
@pytest.mark.parametrize("include_head", [False, True])
def test_selected_parameters_are_the_single_models(unit, include_head) -> None:
    models = single_models(unit, 2)
    stacked = StackedParameters(models)
    assert noisy_member_parameter_names(stacked, include_head=include_head) == (
        noisy_parameter_names(models[0], include_head=include_head)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("include_head", [False, True])
def test_every_member_sees_the_single_runs_noise(dtype, include_head) -> None:
    """Three updates: each member's noisy weights == that member's single run's param + eps."""
    models = single_models("lstm", 3, dtype)
    stacked = StackedParameters(models)
    population = PopulationWeightNoise(stacked, std=0.075, seed=42, include_head=include_head)
    singles = [WeightNoise(m, std=0.075, seed=42, include_head=include_head) for m in models]
    for _ in range(3):
        noisy = population.noisy_parameters()
        assert list(noisy) == singles[0].names
        for k, (model, noise) in enumerate(zip(models, singles, strict=True)):
            params = dict(model.named_parameters())
            for name, eps in noise.draw().items():
                assert noisy[name].dtype == dtype
                assert torch.equal(noisy[name][k], params[name] + eps), f"{name}, member {k}"
    noisy["rnn.weight_hh"].sum().backward()  # differentiable in the clean stacked parameter
    assert torch.equal(stacked.rnn.weight_hh.grad, torch.ones_like(stacked.rnn.weight_hh))


def test_generator_state_resumes_the_stream_and_zero_std_draws_nothing() -> None:
    stacked = StackedParameters(single_models("gru", 2))
    noise = PopulationWeightNoise(stacked, std=0.1, seed=1)
    noise.noisy_parameters()
    saved = noise.state_dict()
    expected = noise.noisy_parameters()
    resumed = PopulationWeightNoise(stacked, std=0.1, seed=999)
    resumed.load_state_dict(saved)
    for name, value in resumed.noisy_parameters().items():
        assert torch.equal(value, expected[name])
    off = PopulationWeightNoise(stacked, std=0.0, seed=1)
    before = off.generator.get_state()
    assert not off.active and off.noisy_parameters() == {}
    assert torch.equal(off.generator.get_state(), before)
    with pytest.raises(ValueError, match="trainer.weight_noise must be >= 0"):
        PopulationWeightNoise(stacked, std=-1.0, seed=1)
