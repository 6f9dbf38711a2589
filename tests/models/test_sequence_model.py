"""SequenceModel, heads and build_model: padding, masking, NLL, errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from gru_repro.models import (
    HEADS,
    BernoulliHead,
    SequenceModel,
    build_model,
    get_head_class,
    kernels,
)
from gru_repro.models.mixture_head import GaussianMixtureHead

D = torch.float64


def _padded_batch(seqs: list[tuple[torch.Tensor, torch.Tensor]]) -> SimpleNamespace:
    """Zero-padded time-major batch like gru_repro.data.batching.Batch."""
    lengths = torch.tensor([len(x) for x, _ in seqs])
    inputs = torch.nn.utils.rnn.pad_sequence([x for x, _ in seqs])  # (T, B, I)
    targets = torch.nn.utils.rnn.pad_sequence([y for _, y in seqs])
    mask = torch.arange(int(lengths.max()))[:, None] < lengths[None, :]
    return SimpleNamespace(inputs=inputs, targets=targets, mask=mask, lengths=lengths)


def _roll(steps: int, notes: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    roll = (torch.rand(steps + 1, notes, generator=gen) < 0.3).to(D)
    return roll[:-1], roll[1:]


@pytest.mark.parametrize(("unit", "options"), [("tanh", {}), ("gru", {}), ("lstm", {})])
def test_padding_does_not_change_a_sequence(unit: str, options: dict) -> None:
    torch.manual_seed(0)
    model = build_model(unit, 6, 6, hidden_size=5, init="torch", **options).to(D)
    gen = torch.Generator().manual_seed(1)
    short, long = _roll(4, 6, gen), _roll(9, 6, gen)
    alone = _padded_batch([short])
    batch = _padded_batch([long, short])
    nll_alone = model.step_nll(alone)  # (4, 1)
    nll_batch = model.step_nll(batch)  # (9, 2)
    torch.testing.assert_close(nll_batch[:4, 1], nll_alone[:, 0])
    assert torch.all(nll_batch[4:, 1] == 0)
    params_alone, _ = model(alone.inputs)
    params_batch, _ = model(batch.inputs)
    torch.testing.assert_close(params_batch[:4, 1], params_alone[:, 0])
    # Gradients of the summed NLL: padded steps contribute nothing.
    model.zero_grad()
    nll_alone.sum().backward()
    grads_alone = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    (nll_batch[:, 1]).sum().backward()
    for g_alone, p in zip(grads_alone, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, g_alone)


def test_bernoulli_nll_by_hand() -> None:
    head = BernoulliHead(3, 2).to(D)
    logits = torch.tensor([[[2.0, -1.0]]], dtype=D)
    targets = torch.tensor([[[1.0, 0.0]]], dtype=D)
    p = torch.sigmoid(logits)
    expected = -(torch.log(p[..., 0]) + torch.log(1 - p[..., 1]))
    torch.testing.assert_close(head.nll(logits, targets), expected)
    # Stable where sigmoid would saturate.
    big = torch.tensor([[[80.0, -80.0]]], dtype=torch.float32)
    assert torch.isfinite(head.nll(big, torch.tensor([[[0.0, 1.0]]]))).all()


def test_bernoulli_sample_frequencies() -> None:
    head = BernoulliHead(3, 2)
    logits = torch.tensor([[0.0, 2.0]]).expand(20_000, 2)
    draws = head.sample(logits, torch.Generator().manual_seed(0))
    assert draws.shape == (20_000, 2) and set(draws.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(draws.mean(0), torch.sigmoid(logits[0]), atol=0.015, rtol=0)
    again = head.sample(logits, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_step_nll_masks_and_matches_bce() -> None:
    torch.manual_seed(0)
    model = build_model("gru", 4, 4, hidden_size=3)
    gen = torch.Generator().manual_seed(2)
    batch = _padded_batch(
        [tuple(t.float() for t in _roll(5, 4, gen)), tuple(t.float() for t in _roll(2, 4, gen))]
    )
    nll = model.step_nll(batch)
    logits, _ = model(batch.inputs)
    expected = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none").sum(-1)
    torch.testing.assert_close(nll[batch.mask], expected[batch.mask])
    assert torch.all(nll[~batch.mask] == 0)


@pytest.mark.parametrize("backend", ["python", pytest.param("cpp", marks=pytest.mark.cpp)])
@pytest.mark.parametrize("unit", ["tanh", "gru", "lstm"])
def test_state_carries_over(request, unit: str, backend: str) -> None:
    """A sequence in two pieces, the state handed on, gives the outputs and the final state
    (the LSTM's h and c) of the whole sequence; from a zero state the second piece differs."""
    if backend == "cpp":
        request.getfixturevalue("cpp_loops")
    torch.manual_seed(0)
    model = build_model(unit, 3, 3, hidden_size=4, init="torch")
    x = torch.randn(6, 2, 3)
    with kernels.use_backend(backend):
        whole, final = model(x)
        first, state = model(x[:4])
        rest, final_again = model(x[4:], state)
        rest_from_zeros, _ = model(x[4:])

    def parts(state):  # (h,) or (h, c), each (B, H)
        return tuple(state) if unit == "lstm" else (state,)

    torch.testing.assert_close(torch.cat([first, rest]), whole)
    assert len(parts(final_again)) == (2 if unit == "lstm" else 1)
    for got, expected in zip(parts(final_again), parts(final), strict=True):
        assert got.shape == (2, 4)
        torch.testing.assert_close(got, expected)
    assert not torch.allclose(rest_from_zeros, rest)


def test_build_model_sizes_and_options() -> None:
    model = build_model("lstm", 88, 88, budget=19_800)
    assert isinstance(model, SequenceModel) and model.hidden_size == 39
    assert hasattr(model.rnn, "weight_peephole")
    names = {
        n for n, _ in build_model("gru", 5, 5, hidden_size=3, reset_after=True).named_parameters()
    }
    assert {"rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih", "rnn.bias_hh"} <= names
    assert "rnn.weight_peephole" not in {
        n for n, _ in build_model("lstm", 5, 5, hidden_size=3, peephole=False).named_parameters()
    }


def test_build_model_errors() -> None:
    with pytest.raises(ValueError, match="unknown unit 'rnn': choose one of tanh, gru, lstm"):
        build_model("rnn", 5, 5, hidden_size=3)
    with pytest.raises(ValueError, match="exactly one of model.hidden_size and model.budget"):
        build_model("gru", 5, 5, hidden_size=3, budget=100)
    with pytest.raises(ValueError, match="exactly one of model.hidden_size and model.budget"):
        build_model("gru", 5, 5)
    with pytest.raises(ValueError, match="unknown head 'softmax'"):
        build_model("gru", 5, 5, hidden_size=3, head="softmax")
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        build_model("gru", 5, 5, hidden_size=3, init="xavier")
    with pytest.raises(ValueError, match="option.*reset_after.*'lstm'.*peephole"):
        build_model("lstm", 5, 5, hidden_size=3, reset_after=True)


def test_heads_are_registered_by_name_and_built_by_it() -> None:
    assert HEADS == {"bernoulli": BernoulliHead, "gmm": GaussianMixtureHead}
    assert get_head_class("gmm") is GaussianMixtureHead
    model = build_model("gru", 20, 10, hidden_size=8, head="gmm", head_options={"n_components": 4})
    assert type(model.head) is GaussianMixtureHead and model.head.n_components == 4
    assert type(build_model("gru", 5, 5, hidden_size=3).head) is BernoulliHead  # the default
    x = torch.randn(5, 2, 20)
    batch = SimpleNamespace(
        inputs=x, targets=torch.randn(5, 2, 10), mask=torch.ones(5, 2, dtype=torch.bool)
    )
    assert model.step_nll(batch).shape == (5, 2)


@pytest.mark.parametrize("name", ["tanh", "gru", "lstm"])
def test_model_configs_build(name: str) -> None:
    """Every key of configs/model/*.yaml is a build_model argument; sizes are Table 1's."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gru_repro.train import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = OmegaConf.to_container(compose("train", [f"model={name}"]).model, resolve=True)
    assert cfg["unit"] == name and cfg["budget"] is None
    model = build_model(input_size=88, output_size=88, **cfg)
    assert model.hidden_size == {"tanh": 100, "gru": 46, "lstm": 36}[name]
    budget = {"tanh": 20_100, "gru": 20_200, "lstm": 19_800}[name]  # Table 1's printed counts
    by_budget = build_model(
        input_size=100, output_size=100, **{**cfg, "hidden_size": None, "budget": budget}
    )
    assert by_budget.hidden_size == {"tanh": 100, "gru": 46, "lstm": 36}[name]  # 100 inputs
