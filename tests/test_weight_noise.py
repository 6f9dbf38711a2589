"""Weight noise: one draw per update shared by all steps, gradients on the clean weights,
never on in evaluation unless asked."""

from __future__ import annotations

import copy

import pytest
import torch

from gru_repro.data import make_batches
from gru_repro.data.synthetic import load_synthetic
from gru_repro.models import build_model
from gru_repro.training.metrics import evaluate
from gru_repro.training.weight_noise import WeightNoise, noisy_parameter_names


@pytest.fixture(scope="module")
def batch():
    splits = load_synthetic(n_train=6, n_valid=2, n_test=2, min_length=8, max_length=12)
    b = make_batches(splits.train, 6, shuffle=False)[0]
    return type(b)(b.inputs.double(), b.targets.double(), b.mask, b.lengths)  # float64 models


def _model(unit: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(unit, 24, 24, hidden_size=5).double()


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_noise_goes_on_input_and_recurrent_matrices_only(unit: str) -> None:
    model = _model(unit)
    names = noisy_parameter_names(model)
    assert sorted(n.rsplit(".", 1)[-1] for n in names) == ["weight_hh", "weight_ih"]
    with_head = noisy_parameter_names(model, include_head=True)
    extra = set(with_head) - set(names)
    assert extra and all(n.startswith("head.") for n in extra)
    assert not any("bias" in n or "peephole" in n for n in with_head)


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_one_draw_shared_by_all_steps_and_gradients_land_on_clean_weights(unit, batch) -> None:
    model = _model(unit)
    clean = copy.deepcopy(model.state_dict())
    noise = WeightNoise(model, std=0.075, seed=3)
    replay = torch.Generator().set_state(noise.generator.get_state())

    loss = noise.step_nll(batch).sum()
    loss.backward()

    # the same draw added once to the weights of a copy gives the same NLL at every step:
    # so the draw is shared by all time steps of the update
    drawn = noise.draw(replay)
    noisy_model = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in noisy_model.named_parameters():
            param.add_(drawn.get(name, torch.zeros_like(param)))
    noisy_model.zero_grad()
    reference = noisy_model.step_nll(batch)
    reference.sum().backward()
    torch.testing.assert_close(loss, reference.sum())

    # parameters untouched; their gradients are those taken at the noisy weights
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, clean[name])
    noisy_params = dict(noisy_model.named_parameters())
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, noisy_params[name].grad)
    # and the noise really changed the loss
    assert not torch.allclose(loss, model.step_nll(batch).sum())


def test_each_update_draws_fresh_noise_and_same_seed_same_draws(batch) -> None:
    model = _model("gru")
    a, b = WeightNoise(model, std=0.075, seed=5), WeightNoise(model, std=0.075, seed=5)
    first, second = a.step_nll(batch).sum(), a.step_nll(batch).sum()
    assert not torch.allclose(first, second)
    torch.testing.assert_close(b.step_nll(batch).sum(), first)


def test_zero_std_is_off_and_negative_std_is_refused(batch) -> None:
    model = _model("tanh")
    off = WeightNoise(model, std=0.0, seed=0)
    state = off.generator.get_state()
    torch.testing.assert_close(off.step_nll(batch), model.step_nll(batch))
    assert torch.equal(off.generator.get_state(), state)  # nothing drawn
    with pytest.raises(ValueError, match="weight_noise must be >= 0"):
        WeightNoise(model, std=-0.1, seed=0)


def test_evaluation_is_deterministic_without_noise(batch) -> None:
    model = _model("lstm")
    noise = WeightNoise(model, std=0.075, seed=1)
    first, second = evaluate(model, [batch]), evaluate(model, [batch])
    assert first.frame == second.frame
    noisy = evaluate(model, [batch], step_nll_fn=noise.step_nll)
    assert noisy.frame != first.frame
