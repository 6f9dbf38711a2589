"""A member's model state is a single run's (same keys, shapes, bits) and back."""

from __future__ import annotations

import io

import pytest
import torch
from population_cases import StackedParameters, single_models

from gru_repro.training.population import keep_members_, member_state_dict, stack_state_dicts


@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_slicing_a_member_gives_the_single_models_state_dict(unit) -> None:
    models = single_models(unit, 3, torch.float64)
    stacked = stack_state_dicts([m.state_dict() for m in models])
    assert list(stacked) == list(models[0].state_dict())
    assert all(v.shape[0] == 3 for v in stacked.values())
    for k, model in enumerate(models):
        member = member_state_dict(stacked, k)
        single = model.state_dict()
        assert list(member) == list(single)
        for key, value in single.items():
            assert member[key].dtype == value.dtype and torch.equal(member[key], value), key
        fresh = single_models(unit, 1, torch.float64, seeds=[100])[0]
        fresh.load_state_dict(member)  # strict: a single model takes it as its own


def test_a_members_checkpoint_holds_only_its_own_numbers() -> None:
    """torch.save of a view writes the whole storage: the slice must be a copy."""
    models = single_models("gru", 4)
    stacked = StackedParameters(models).state_dict()
    sizes = []
    for state in (member_state_dict(stacked, 2), models[2].state_dict()):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        sizes.append(len(buffer.getvalue()))
    assert abs(sizes[0] - sizes[1]) < 512  # same tensors; only pickled names may differ


def test_shared_entries_are_kept_once_and_must_agree() -> None:
    states = [{"w": torch.full((2,), float(k)), "table": torch.arange(3.0)} for k in range(3)]
    stacked = stack_state_dicts(states, shared={"table"})
    assert stacked["w"].shape == (3, 2) and torch.equal(stacked["table"], torch.arange(3.0))
    assert torch.equal(member_state_dict(stacked, 1, shared={"table"})["table"], torch.arange(3.0))
    states[2]["table"] = torch.zeros(3)
    with pytest.raises(ValueError, match="shared state 'table' differs"):
        stack_state_dicts(states, shared={"table"})
    with pytest.raises(ValueError, match="member 1's state dict has keys"):
        stack_state_dicts([{"a": torch.zeros(1)}, {"b": torch.zeros(1)}])


def test_keep_members_slices_parameters_in_place() -> None:
    models = single_models("tanh", 4)
    stacked = StackedParameters(models)
    params = list(stacked.parameters())
    for p in params:
        p.grad = torch.ones_like(p)
    keep_members_(stacked.parameters(), [3, 1])
    assert list(stacked.parameters()) == params  # the same Parameter objects
    for k, m in zip([0, 1], [3, 1], strict=True):
        for key, value in models[m].state_dict().items():
            assert torch.equal(member_state_dict(stacked.state_dict(), k)[key], value)
    assert all(p.grad is None and p.shape[0] == 2 and p.is_contiguous() for p in params)
