"""The fused population (models/population_fused.py) and the loops' member layout: every member
computes its single model's step NLL and gradients, bit for bit under the C++ loops where the
products are exact (float64; float32 inside ``exact_member_products``), within float32
rounding where they are batched (float32 by default: one bmm for all members), and within
rounding under the Python loops (their per-step batched product ``baddbmm_`` runs other
kernels than the single run's ``addmm_`` for small operands)."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from exploding import Amplify
from unit_cases import VARIANTS

from gru_repro.data import make_batches
from gru_repro.data.synthetic import load_synthetic
from gru_repro.models import build_model, kernels
from gru_repro.models.gru import PaperGRUFunction, ResetAfterGRUFunction
from gru_repro.models.lstm import LSTMFunction
from gru_repro.models.population import FunctionalPopulation, build_population
from gru_repro.models.population_fused import (
    FusedPopulation,
    MemberBernoulliNLL,
    MemberLinearFunction,
)
from gru_repro.models.recurrent import exact_member_products, exact_members, member_empty
from gru_repro.models.tanh_rnn import TanhRNNFunction
from gru_repro.training.clipping import clip_or_rescue
from gru_repro.training.metrics import batch_loss
from gru_repro.training.population import backward_and_clip_members

UNIT_OF = {"tanh": "tanh", "gru": "gru", "gru_reset_after": "gru", "lstm": "lstm"}
UNIT_OF["lstm_no_peephole"] = "lstm"
OPTIONS = {
    "tanh": {},
    "gru": {},
    "gru_reset_after": {"reset_after": True},
    "lstm": {},
    "lstm_no_peephole": {"peephole": False},
}
# float32 tolerance of the Python loops: members and single runs sum the recurrent products in
# another order (baddbmm_ against addmm_), about 1e-7 relative per step, grown over 30 steps
PYTHON_TOLERANCE = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-12, 1e-12)}
# float32 tolerance of the batched products (one bmm over the members against each single
# run's mm): other summation orders, about 1e-7 relative per product, grown over 30 steps
BATCHED_TOLERANCE = (1e-5, 1e-5)


def _batch(batch_size: int, dtype):
    """The first training batch of a synthetic set; with several sequences it is padded."""
    splits = load_synthetic(n_train=6, n_valid=2, n_test=2, min_length=5, max_length=30)
    batch = make_batches(splits.train, batch_size, shuffle=False, bucket=False)[0]
    return dataclasses.replace(
        batch, inputs=batch.inputs.to(dtype), targets=batch.targets.to(dtype)
    )


def _models(name: str, members: int, dtype, hidden: int = 7) -> list:
    models = []
    for k in range(members):
        torch.manual_seed(k)  # different weights per member: rows cannot be confused
        models.append(
            build_model(UNIT_OF[name], 24, 24, hidden_size=hidden, init="torch", **OPTIONS[name])
        )
        with torch.no_grad():  # nonzero peepholes and biases
            for p in models[-1].parameters():
                p.add_(0.1 * torch.randn_like(p))
    return [m.to(dtype) for m in models]


def _member_results(population, models, batch):
    """(population NLL rows, stacked grads) and (single NLLs, single grads) for one update's
    loss (each member's frame-weighted mean, summed over members)."""
    step_nll = population.member_step_nll(batch)
    torch.stack([batch_loss(nll, batch.mask) for nll in step_nll]).sum().backward()
    singles = []
    for model in models:
        nll = model.step_nll(batch)
        batch_loss(nll, batch.mask).backward()
        singles.append((nll, [p.grad for p in model.parameters()]))
    return step_nll, [p.grad for p in population.parameters()], singles


@pytest.mark.cpp
@pytest.mark.parametrize("batch_size", [1, 6], ids=["batch1", "batch6"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_member_is_its_single_model_bit_for_bit(cpp_loops, name, dtype, batch_size):
    batch = _batch(batch_size, dtype)
    assert batch_size == 1 or not batch.mask.all()  # padding present
    models = _models(name, 3, dtype)
    # float64 is exact by itself; float32 asks for it
    with kernels.use_backend("cpp"), exact_member_products(dtype == torch.float32):
        population = FusedPopulation(models)
        step_nll, grads, singles = _member_results(population, models, batch)
    assert step_nll.shape == (3, *batch.mask.shape)
    assert (step_nll[:, ~batch.mask] == 0).all()
    names = [n for n, _ in population.named_parameters()]
    assert names == [n for n, _ in models[0].named_parameters()]
    for k, (nll, single_grads) in enumerate(singles):
        assert torch.equal(step_nll[k], nll), f"member {k} NLL"
        for pname, stacked, single in zip(names, grads, single_grads, strict=True):
            assert torch.equal(stacked[k], single), f"member {k} {pname}"


@pytest.mark.cpp
@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_members_at_the_music_sizes_are_bit_for_bit(cpp_loops, name):
    """The packed AVX-512 product (float32, 8-row blocks) at a bench size, 9 sequences."""
    splits = load_synthetic(n_train=9, n_valid=2, n_test=2, min_length=20, max_length=60)
    batch = make_batches(splits.train, 9, shuffle=False)[0]
    models = _models(name, 4, torch.float32, hidden=46 if name == "gru" else 36)
    with kernels.use_backend("cpp"), exact_member_products():
        step_nll, grads, singles = _member_results(FusedPopulation(models), models, batch)
    for k, (nll, single_grads) in enumerate(singles):
        assert torch.equal(step_nll[k], nll)
        assert all(torch.equal(g[k], s) for g, s in zip(grads, single_grads, strict=True))


@pytest.mark.cpp
@pytest.mark.parametrize("batch_size", [1, 6], ids=["batch1", "batch6"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_batched_float32_members_match_their_single_models(cpp_loops, name, batch_size):
    """The default float32 path: one bmm over the members for every whole-sequence product
    and one NLL call; each member within float32 rounding of its single model."""
    batch = _batch(batch_size, torch.float32)
    models = _models(name, 3, torch.float32)
    assert not exact_members(batch.inputs)
    rtol, atol = BATCHED_TOLERANCE
    with kernels.use_backend("cpp"):
        step_nll, grads, singles = _member_results(FusedPopulation(models), models, batch)
    assert (step_nll[:, ~batch.mask] == 0).all()
    for k, (nll, single_grads) in enumerate(singles):
        torch.testing.assert_close(step_nll[k], nll, rtol=rtol, atol=atol)
        for stacked, single in zip(grads, single_grads, strict=True):
            torch.testing.assert_close(stacked[k], single, rtol=rtol, atol=atol)


def test_exact_member_products_nests_and_restores():
    x32, x64 = torch.empty(0), torch.empty(0, dtype=torch.float64)
    assert exact_members(x64) and not exact_members(x32)
    with exact_member_products():
        assert exact_members(x32)
        with exact_member_products(False):  # off inside on stays on
            assert exact_members(x32)
        assert exact_members(x32)
    assert not exact_members(x32)
    with pytest.raises(RuntimeError), exact_member_products():
        raise RuntimeError("left by an exception")
    assert not exact_members(x32)


@pytest.mark.parametrize("batch_size", [1, 6], ids=["batch1", "batch6"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_python_loops_members_match_their_single_models(name, dtype, batch_size):
    batch = _batch(batch_size, dtype)
    models = _models(name, 3, dtype)
    rtol, atol = PYTHON_TOLERANCE[dtype]
    with kernels.use_backend("python"):
        step_nll, grads, singles = _member_results(FusedPopulation(models), models, batch)
    for k, (nll, single_grads) in enumerate(singles):
        torch.testing.assert_close(step_nll[k], nll, rtol=rtol, atol=atol)
        for stacked, single in zip(grads, single_grads, strict=True):
            torch.testing.assert_close(stacked[k], single, rtol=rtol, atol=atol)


@pytest.mark.cpp
def test_keep_drops_members_and_the_rest_stay_exact(cpp_loops):
    batch = _batch(6, torch.float64)
    models = _models("lstm", 4, torch.float64)
    population = build_population(models, fused=True)
    assert type(population) is FusedPopulation
    population.keep([3, 1])
    assert population.members == 2 and all(p.shape[0] == 2 for p in population.parameters())
    with kernels.use_backend("cpp"):
        step_nll, grads, singles = _member_results(population, [models[3], models[1]], batch)
    for k, (nll, single_grads) in enumerate(singles):
        assert torch.equal(step_nll[k], nll)
        assert all(torch.equal(g[k], s) for g, s in zip(grads, single_grads, strict=True))
    assert torch.equal(population.member_state_dict(0)["rnn.weight_hh"], models[3].rnn.weight_hh)


def test_build_population_defaults_to_the_fused_one_for_music_models():
    assert type(build_population(_models("gru", 2, torch.float32))) is FusedPopulation
    assert type(build_population(_models("gru", 2, torch.float32), fused=False)) is (
        FunctionalPopulation
    )
    speech = [build_model("gru", 20, 10, hidden_size=5, head="gmm") for _ in range(2)]
    assert type(build_population(speech)) is FunctionalPopulation  # the mixture head
    with pytest.raises(ValueError, match="Bernoulli head"):
        FusedPopulation(speech)


def _stacked_inputs(name: str, members=2, steps=4, batch=2, inputs=3, hidden=3):
    """Inputs of a unit's Function in the member layout: x (T, B, I) shared, h0 (and c0)
    (P, B, H), stacked weights; float64, the weights requiring grad."""
    gen = torch.Generator().manual_seed(11)
    layer = VARIANTS[name][0](inputs, hidden, dtype=torch.float64, **VARIANTS[name][1])
    params = [
        (torch.rand((members, *p.shape), generator=gen, dtype=torch.float64) - 0.5)
        for p in layer.parameters()
    ]
    x = torch.rand(steps, batch, inputs, generator=gen, dtype=torch.float64) - 0.5
    states = [
        member_empty(x, (members, batch, hidden)).copy_(
            torch.rand(members, batch, hidden, generator=gen, dtype=torch.float64) - 0.5
        )
        for _ in range(2 if name.startswith("lstm") else 1)
    ]
    if name == "lstm_no_peephole":
        params.append(None)
    return [x, *states, *[p.requires_grad_() if p is not None else None for p in params]]


FUNCTIONS = {
    "tanh": TanhRNNFunction,
    "gru": PaperGRUFunction,
    "gru_reset_after": ResetAfterGRUFunction,
    "lstm": LSTMFunction,
    "lstm_no_peephole": LSTMFunction,
}


@pytest.mark.parametrize("backend", ["python", pytest.param("cpp", marks=pytest.mark.cpp)])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_gradcheck_member_layout(request, backend, name):
    if backend == "cpp":
        request.getfixturevalue("cpp_loops")
    args = _stacked_inputs(name)
    with kernels.use_backend(backend):
        assert torch.autograd.gradcheck(FUNCTIONS[name].apply, args)


def test_gradcheck_member_linear():
    gen = torch.Generator().manual_seed(5)
    hidden = torch.rand(3, 4, 2, 5, generator=gen, dtype=torch.float64).requires_grad_()
    weight = torch.rand(3, 6, 5, generator=gen, dtype=torch.float64).requires_grad_()
    bias = torch.rand(3, 6, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(MemberLinearFunction.apply, (hidden, weight, bias))


def test_member_bernoulli_nll_is_torchs_within_rounding_and_its_gradient_checks():
    gen = torch.Generator().manual_seed(7)
    logits = (torch.randn(3, 5, 2, 6, generator=gen, dtype=torch.float64) * 30).requires_grad_()
    targets = (torch.rand(5, 2, 6, generator=gen) < 0.3).double()
    expected = F.binary_cross_entropy_with_logits(
        logits, targets.expand_as(logits), reduction="none"
    ).sum(-1)
    torch.testing.assert_close(MemberBernoulliNLL.apply(logits, targets), expected)
    assert torch.autograd.gradcheck(MemberBernoulliNLL.apply, (logits / 30, targets))


def test_member_linear_batched_equals_exact_within_rounding():
    """The float32 batched output layer (baddbmm, bmm) against its exact per-member form."""
    gen = torch.Generator().manual_seed(6)
    inputs = [torch.rand(s, generator=gen) - 0.5 for s in [(3, 4, 2, 5), (3, 6, 5), (3, 6)]]
    results = []
    for exact in (False, True):
        leaves = [t.clone().requires_grad_() for t in inputs]
        with exact_member_products(exact):
            out = MemberLinearFunction.apply(*leaves)
            out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        results.append([out.detach(), *[t.grad for t in leaves]])
    for batched, exact in zip(*results, strict=True):
        torch.testing.assert_close(batched, exact, rtol=1e-6, atol=1e-6)


def test_member_buffers_start_each_member_aligned():
    for dtype, shape in [(torch.float32, (3, 5, 1, 7)), (torch.float64, (4, 3, 2, 3))]:
        buffer = member_empty(torch.empty(0, dtype=dtype), shape)
        assert buffer.shape == shape and buffer[0].is_contiguous()
        assert all(buffer[k].data_ptr() % 64 == 0 for k in range(shape[0]))


@pytest.mark.cpp
@pytest.mark.parametrize(
    ("unit", "weight", "exact"),
    [("lstm", "weight_hh", True), ("gru", "weight_ih", False)],
    ids=["exact-products", "batched-products"],
)
def test_a_members_nan_stays_in_its_rows(cpp_loops, unit, weight, exact):
    """Members share no arithmetic: a NaN weight of member 1 reaches no other member, with the
    exact per-member products (the others then bit for bit their single runs) and with the
    batched ones (bmm over members: within BATCHED_TOLERANCE)."""
    batch = _batch(6, torch.float32)
    models = _models(unit, 3, torch.float32)
    population = FusedPopulation(models)
    with torch.no_grad():
        getattr(population.rnn, weight)[1, 0, 0] = math.nan
    products = exact_member_products() if exact else contextlib.nullcontext()
    with kernels.use_backend("cpp"), products:
        step_nll, grads, singles = _member_results(population, models, batch)
    assert step_nll[1][batch.mask].isnan().all()
    rtol, atol = (0.0, 0.0) if exact else BATCHED_TOLERANCE
    for k in (0, 2):
        torch.testing.assert_close(step_nll[k], singles[k][0], rtol=rtol, atol=atol)
        for g, single in zip(grads, singles[k][1], strict=True):
            torch.testing.assert_close(g[k], single, rtol=rtol, atol=atol)


@pytest.mark.cpp
def test_an_overflowing_member_is_rescued_as_its_single_run(cpp_loops):
    """Member 1's backward amplified 1e40 (beyond float32): backward_and_clip_members redoes
    it on a scaled loss through the fused graph, as clip_or_rescue does for its single run."""
    batch = _batch(6, torch.float32)
    models = _models("gru", 3, torch.float32)
    population = FusedPopulation(models)

    def amplified(nll):
        return Amplify.apply(Amplify.apply(nll, 1e20), 1e20)

    with kernels.use_backend("cpp"), exact_member_products():
        step_nll = population.member_step_nll(batch)
        rows = [amplified(n) if k == 1 else n for k, n in enumerate(step_nll)]
        losses = torch.stack([batch_loss(n, batch.mask) for n in rows])
        params = list(population.parameters())
        norms, retries = backward_and_clip_members(losses, params, 1.0)
        assert retries == [0, 1, 0]
        for k, model in enumerate(models):
            nll = model.step_nll(batch)
            loss = batch_loss(amplified(nll) if k == 1 else nll, batch.mask)
            loss.backward(retain_graph=True)
            norm, redone = clip_or_rescue(loss, list(model.parameters()), 1.0)
            assert (norm, redone) == (norms[k], retries[k])
            for p, q in zip(model.parameters(), params, strict=True):
                assert torch.equal(q.grad[k], p.grad)
