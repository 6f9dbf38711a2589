"""The population optimizers and schedules: every member, bit for bit, the single run's
torch.optim.RMSprop / FlooredRMSprop + LinearLR / constant schedule, in float32 and float64."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from gru_repro.training.optim import build_optimizer, build_scheduler
from gru_repro.training.population import (
    build_population_optimizer,
    build_population_schedule,
    keep_members_,
    load_member_states,
    member_optimizer_state_dict,
    member_schedule_state_dict,
)

# Nottingham GRU sizes (rnn.weight_ih, weight_hh, bias, head weight, head bias): every size
# leaves a vector-loop tail somewhere, so a kernel whose tail rounds otherwise would show
SHAPES = [(138, 88), (138, 46), (138,), (88, 46), (88,)]
LRS = [1e-3, 3.7e-4, 2.2e-2]
TOTAL_UPDATES = 5  # the linear schedule reaches its end inside the test's 8 steps

OPTIONS = {
    "plain": {"name": "rmsprop", "alpha": 0.95, "eps": 1e-6},
    "momentum": {"name": "rmsprop", "alpha": 0.9, "eps": 1e-6, "momentum": 0.9},
    "centered": {"name": "rmsprop", "alpha": 0.95, "eps": 1e-8, "centered": True},
    "weight_decay": {"name": "rmsprop", "alpha": 0.95, "eps": 1e-6, "weight_decay": 1e-3},
    "all_knobs": {
        "name": "rmsprop",
        "alpha": 0.9,
        "eps": 1e-6,
        "momentum": 0.5,
        "centered": True,
        "weight_decay": 1e-2,
    },
    "floored": {"name": "rmsprop_released", "decay": 0.95, "momentum": 0.9, "rms_floor": 0.01},
    "floored_no_momentum": {"name": "rmsprop_released", "momentum": 0.0, "rms_floor": 0.05},
    # the released update cap: binds for some members and steps, not for others (see below)
    "floored_capped": {
        "name": "rmsprop_released",
        "decay": 0.95,
        "momentum": 0.9,
        "rms_floor": 0.01,
        "max_update_norm": 3.0,
    },
}


class Runs:
    """P single runs (torch optimizer + scheduler on ordinary copies) next to one population."""

    def __init__(self, options, schedule, dtype, lr_update="auto", shapes=SHAPES, lrs=LRS):
        gen = torch.Generator().manual_seed(7)
        self.options, self.schedule, self.dtype, self.shapes = options, schedule, dtype, shapes
        self.gen = gen
        stacked = [torch.randn(len(lrs), *s, generator=gen, dtype=dtype) for s in shapes]
        self.pop_params = [nn.Parameter(t.clone()) for t in stacked]
        self.pop_opt = build_population_optimizer(
            self.pop_params, lrs=lrs, lr_update=lr_update, **options
        )
        self.pop_sched = build_population_schedule(
            self.pop_opt, schedule=schedule, total_updates=TOTAL_UPDATES, final_lr_fraction=0.01
        )
        self.singles = []
        for k, lr in enumerate(lrs):
            params = [nn.Parameter(t[k].clone()) for t in stacked]
            opt = build_optimizer(params, lr=lr, **options)
            sched = build_scheduler(
                opt, schedule=schedule, total_updates=TOTAL_UPDATES, final_lr_fraction=0.01
            )
            self.singles.append((params, opt, sched))

    def step(self) -> None:
        """One update of everyone from the same random gradients (scales from 1e-4 to 1e2)."""
        members = len(self.singles)
        for i, p in enumerate(self.pop_params):
            scale = 10.0 ** torch.randint(-4, 3, (members,), generator=self.gen)
            shape = (members,) + (1,) * (p.dim() - 1)
            g = torch.randn(p.shape, generator=self.gen, dtype=self.dtype)
            p.grad = g * scale.to(self.dtype).view(shape)
            for k, (params, _, _) in enumerate(self.singles):
                params[i].grad = p.grad[k].clone()
        self.pop_opt.step()
        self.pop_sched.step()
        for _, opt, sched in self.singles:
            opt.step()
            sched.step()

    def keep(self, members: list[int]) -> None:
        keep_members_(self.pop_params, members)
        self.pop_opt.keep(members)
        self.singles = [self.singles[m] for m in members]

    def assert_identical(self) -> None:
        """Parameters, optimizer state and lrs of member k == single run k, bit for bit."""
        assert self.pop_sched.last_lrs() == [s.get_last_lr()[0] for _, _, s in self.singles]
        for k, (params, opt, _) in enumerate(self.singles):
            for i, p in enumerate(params):
                assert torch.equal(self.pop_params[i][k], p), f"member {k}, parameter {i}"
                for name, rows in self.pop_opt.state[i].items():
                    assert torch.equal(rows[k], opt.state[p][name]), f"{name} of member {k}"
                assert set(self.pop_opt.state[i]) == set(opt.state[p]) - {"step"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("schedule", ["constant", "linear"])
@pytest.mark.parametrize("variant", sorted(OPTIONS))
@pytest.mark.parametrize("lr_update", ["auto", "per_member"])
def test_every_member_is_its_single_run_bit_for_bit(variant, schedule, dtype, lr_update) -> None:
    runs = Runs(OPTIONS[variant], schedule, dtype, lr_update)
    for _ in range(8):
        runs.step()
        runs.assert_identical()
    if schedule == "linear":  # past total_updates: at 1% (LinearLR's float, not 0.01 * lr)
        assert runs.pop_sched.last_lrs() == pytest.approx([lr * 0.01 for lr in LRS], rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_tensors_split_across_threads_stay_exact(dtype) -> None:
    """Speech-sized matrices (P x 400 x 400 > torch's grain size): an elementwise kernel split
    between threads at other offsets than the single run's still gives each element its bits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = Runs(OPTIONS["all_knobs"], "linear", dtype, shapes=[(400, 400), (1200,)])
        for _ in range(3):
            runs.step()
        runs.assert_identical()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_update_cap_binds_per_member_on_its_own_norm(dtype) -> None:
    """Each member's update is capped by its own velocity norm (the single run's
    ``last_update_norm``): over the steps the cap binds for some members and not for others."""
    runs = Runs(OPTIONS["floored_capped"], "linear", dtype)
    bound = set()
    for _ in range(6):
        runs.step()
        runs.assert_identical()
        norms = runs.pop_opt.last_update_norms
        assert norms == [opt.last_update_norm for _, opt, _ in runs.singles]
        bound |= {(k, norm > 3.0) for k, norm in enumerate(norms)}
    assert {b for _, b in bound} == {True, False}, bound


@pytest.mark.parametrize("variant", ["momentum", "floored", "floored_capped"])
def test_dropping_a_member_leaves_the_others_on_track(variant) -> None:
    runs = Runs(OPTIONS[variant], "linear", torch.float64)
    for _ in range(3):
        runs.step()
    runs.keep([0, 2])
    assert runs.pop_opt.members == 2 and runs.pop_params[0].shape[0] == 2
    for _ in range(4):
        runs.step()
        runs.assert_identical()
    runs.keep([1])
    runs.step()
    runs.assert_identical()


@pytest.mark.parametrize("variant", ["all_knobs", "floored"])
def test_state_dict_round_trip_continues_bit_for_bit(variant) -> None:
    runs = Runs(OPTIONS[variant], "linear", torch.float32)
    for _ in range(3):
        runs.step()
    buffer = io.BytesIO()
    torch.save(
        {"optimizer": runs.pop_opt.state_dict(), "schedule": runs.pop_sched.state_dict()}, buffer
    )
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # plain data: what a checkpoint holds
    # a fresh population (as a resumed process builds it), its parameters from the checkpoint
    runs.pop_params = [nn.Parameter(p.detach().clone()) for p in runs.pop_params]
    runs.pop_opt = build_population_optimizer(runs.pop_params, lrs=[1.0] * 3, **OPTIONS[variant])
    runs.pop_sched = build_population_schedule(
        runs.pop_opt, schedule="linear", total_updates=TOTAL_UPDATES
    )
    runs.pop_opt.load_state_dict(saved["optimizer"])
    runs.pop_sched.load_state_dict(saved["schedule"])
    for _ in range(4):
        runs.step()
        runs.assert_identical()


def _assert_same_tree(a, b, where="") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a)} != {set(b)}"
        for key in a:
            _assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b) and a.dtype == b.dtype and a.shape == b.shape, where
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("variant", ["all_knobs", "floored", "floored_capped", "plain"])
@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_member_state_is_the_single_runs_state_dict(variant, schedule) -> None:
    """What a member writes in its checkpoint is what the single run writes, key for key and
    bit for bit; and a population rebuilt from its members' states continues exactly."""
    runs = Runs(OPTIONS[variant], schedule, torch.float64)
    for _ in range(3):
        runs.step()
    for k, (_, opt, sched) in enumerate(runs.singles):
        _assert_same_tree(member_optimizer_state_dict(runs.pop_opt, k), opt.state_dict())
        _assert_same_tree(member_schedule_state_dict(runs.pop_sched, k), sched.state_dict())
    runs.pop_opt = build_population_optimizer(runs.pop_params, lrs=[1.0] * 3, **OPTIONS[variant])
    runs.pop_sched = build_population_schedule(
        runs.pop_opt, schedule=schedule, total_updates=TOTAL_UPDATES, final_lr_fraction=0.01
    )
    load_member_states(
        runs.pop_opt,
        runs.pop_sched,
        [opt.state_dict() for _, opt, _ in runs.singles],
        [sched.state_dict() for _, _, sched in runs.singles],
    )
    for _ in range(4):
        runs.step()
        runs.assert_identical()


def test_bad_population_settings_fail_clearly() -> None:
    params = [nn.Parameter(torch.zeros(3, 2))]
    with pytest.raises(ValueError, match="leading \\(member\\) dimension must be 2"):
        build_population_optimizer(params, name="rmsprop", lrs=[1e-3, 1e-4])
    with pytest.raises(ValueError, match="optim.lr must be > 0, got -0.1"):
        build_population_optimizer(params, name="rmsprop", lrs=[1e-3, -0.1, 1e-4])
    with pytest.raises(ValueError, match="unknown optim.name 'adam'"):
        build_population_optimizer(params, name="adam", lrs=[1e-3] * 3)
    opt = build_population_optimizer(params, name="rmsprop_released", lrs=[1e-3] * 3)
    with pytest.raises(ValueError, match="distinct indices in \\[0, 3\\)"):
        opt.keep([0, 0])
    with pytest.raises(ValueError, match="final_lr_fraction must be in \\(0, 1\\], got 0"):
        build_population_schedule(opt, schedule="linear", total_updates=9, final_lr_fraction=0)
    other = build_population_optimizer(params, name="rmsprop_released", lrs=[1e-3] * 3, decay=0.9)
    with pytest.raises(ValueError, match="options"):
        other.load_state_dict(opt.state_dict())


def test_auto_falls_back_to_per_member_updates_where_the_kernels_round_otherwise(
    monkeypatch,
) -> None:
    """On a build whose fused kernel rounds otherwise than the vectorised form (the probe says
    so), ``auto`` takes the per-member path, which calls the single run's very kernel."""
    import gru_repro.training.population.stacked as population_optim

    runs = Runs(OPTIONS["momentum"], "linear", torch.float64, lr_update="auto")
    assert runs.pop_opt._vectorised(runs.pop_params[0]) is (
        population_optim.vectorised_lr_ops_are_exact(torch.float64, "cpu")
    )
    monkeypatch.setattr(population_optim, "vectorised_lr_ops_are_exact", lambda *_: False)
    assert runs.pop_opt._vectorised(runs.pop_params[0]) is False
    for _ in range(3):
        runs.step()
    runs.assert_identical()
