"""Weight noise: one draw per update shared by all steps, gradients on the clean weights (bit for
bit those of torch.func.functional_call), clean weights restored exactly, never on in evaluation
unless asked."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call

from gru_repro.data import make_batches
from gru_repro.data.synthetic import load_synthetic
from gru_repro.models import build_model
from gru_repro.training.metrics import evaluate
from gru_repro.training.weight_noise import WeightNoise, noisy_parameter_names, noisy_weights

UNITS = ["tanh", "gru", "lstm"]


@pytest.fixture(scope="module")
def batch():
    splits = load_synthetic(n_train=6, n_valid=2, n_test=2, min_length=8, max_length=12)
    return make_batches(splits.train, 6, shuffle=False)[0]


def as_double(batch):
    return type(batch)(batch.inputs.double(), batch.targets.double(), batch.mask, batch.lengths)


def _model(unit: str, dtype=torch.float64) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(unit, 24, 24, hidden_size=5).to(dtype)


def _noisy_loss_and_grads(model, draw, batch):
    with noisy_weights(model, draw):
        loss = model.step_nll(batch).sum()
        loss.backward()
    return loss, {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("unit", UNITS)
def test_noise_goes_on_input_and_recurrent_matrices_only(unit: str) -> None:
    model = _model(unit)
    names = noisy_parameter_names(model)
    assert sorted(n.rsplit(".", 1)[-1] for n in names) == ["weight_hh", "weight_ih"]
    with_head = noisy_parameter_names(model, include_head=True)
    extra = set(with_head) - set(names)
    assert extra and all(n.startswith("head.") for n in extra)
    assert not any("bias" in n or "peephole" in n for n in with_head)


@pytest.mark.parametrize("unit", UNITS)
def test_one_draw_shared_by_all_steps_and_gradients_land_on_clean_weights(unit, batch) -> None:
    batch = as_double(batch)
    model = _model(unit)
    clean = copy.deepcopy(model.state_dict())
    noise = WeightNoise(model, std=0.075, seed=3)
    replay = torch.Generator().set_state(noise.generator.get_state())
    loss, grads = _noisy_loss_and_grads(model, noise.draw(), batch)

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

    # parameters back to their clean values bit for bit; gradients taken at the noisy weights
    for name, value in model.state_dict().items():
        assert torch.equal(value, clean[name]), name
    noisy_params = dict(noisy_model.named_parameters())
    for name, grad in grads.items():
        torch.testing.assert_close(grad, noisy_params[name].grad)
    # and the noise really changed the loss
    assert not torch.allclose(loss, model.step_nll(batch).sum())


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("include_head", [False, True])
def test_in_place_noise_gives_functional_calls_numbers_bit_for_bit(
    unit: str, include_head: bool, batch
) -> None:
    """The earlier form, ``functional_call`` with ``param + eps`` tensors, in float32 as runs
    train: the same loss and the same gradients, exactly (so the committed runs still hold)."""
    model = _model(unit, torch.float32)
    copied = copy.deepcopy(model)
    draw = WeightNoise(model, std=0.075, seed=5, include_head=include_head).draw()
    loss, grads = _noisy_loss_and_grads(model, draw, batch)

    class StepNLL(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = copied

        def forward(self, b):
            return self.model.step_nll(b)

    params = dict(copied.named_parameters())
    noisy = {f"model.{name}": params[name] + eps for name, eps in draw.items()}
    reference = functional_call(StepNLL(), noisy, (batch,), strict=False).sum()
    reference.backward()
    assert torch.equal(loss, reference)
    for name, param in copied.named_parameters():
        assert torch.equal(grads[name], param.grad), name


def test_weights_are_restored_when_the_block_raises_and_a_late_backward_is_refused(batch):
    model = _model("gru", torch.float32)
    clean = copy.deepcopy(model.state_dict())
    noise = WeightNoise(model, std=0.075, seed=2)
    with pytest.raises(KeyError), noisy_weights(model, noise.draw()):
        raise KeyError("crash mid-update")
    assert all(torch.equal(v, clean[k]) for k, v in model.state_dict().items())
    # a backward after the clean weights are back would use them: torch refuses it
    with noisy_weights(model, noise.draw()):
        loss = model.step_nll(batch).sum()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_each_update_draws_fresh_noise_and_same_seed_same_draws(batch) -> None:
    batch = as_double(batch)
    model = _model("gru")
    a, b = WeightNoise(model, std=0.075, seed=5), WeightNoise(model, std=0.075, seed=5)

    def noisy_nll(noise: WeightNoise):
        with torch.no_grad(), noisy_weights(model, noise.draw()):
            return model.step_nll(batch).sum()

    first, second = noisy_nll(a), noisy_nll(a)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(noisy_nll(b), first)


def test_zero_std_is_off_and_negative_std_is_refused(batch) -> None:
    model = _model("tanh")
    off = WeightNoise(model, std=0.0, seed=0)
    state = off.generator.get_state()
    assert not off.active and off.draw() == {}
    assert torch.equal(off.generator.get_state(), state)  # nothing drawn
    with pytest.raises(ValueError, match="weight_noise must be >= 0"):
        WeightNoise(model, std=-0.1, seed=0)


def test_evaluation_is_deterministic_without_noise(batch) -> None:
    batch = as_double(batch)
    model = _model("lstm")
    clean = copy.deepcopy(model.state_dict())
    noise = WeightNoise(model, std=0.075, seed=1)
    first, second = evaluate(model, [batch]), evaluate(model, [batch])
    assert first.frame == second.frame
    noisy = evaluate(model, [batch], draw_noise=noise.draw)
    assert noisy.frame != first.frame
    assert all(torch.equal(v, clean[k]) for k, v in model.state_dict().items())
    # a replayed stream gives the same noisy evaluation
    replay = WeightNoise(model, std=0.075, seed=1)
    assert evaluate(model, [batch], draw_noise=replay.draw).frame == noisy.frame
