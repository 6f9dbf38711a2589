"""The two RMSProp forms and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import LinearLR

from gru_repro.training.optim import (
    FlooredRMSprop,
    build_optimization,
    build_optimizer,
    build_scheduler,
)


def test_floored_rmsprop_matches_hand_computation() -> None:
    # two steps by hand: avg = d*avg + (1-d) g^2; v = m*v - lr*g/max(sqrt(avg), floor); p += v
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = FlooredRMSprop([p], lr=0.1, decay=0.9, momentum=0.5, rms_floor=0.05)
    grads = [torch.tensor([0.3, -0.01, 2.0]), torch.tensor([-0.2, 0.02, 1.0])]
    expected = [1.0, -2.0, 0.5]
    avg, vel = [0.0] * 3, [0.0] * 3
    for g in grads:
        for i in range(3):
            gi = float(g[i])
            avg[i] = 0.9 * avg[i] + 0.1 * gi * gi
            vel[i] = 0.5 * vel[i] - 0.1 * gi / max(math.sqrt(avg[i]), 0.05)
            expected[i] += vel[i]
        p.grad = g.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor(expected), rtol=1e-6, atol=1e-6)
    # the tiny gradient of the second coordinate was divided by the floor, not by its own rms
    assert math.sqrt(avg[1]) < 0.05


def test_plain_rmsprop_is_torch_with_every_knob_from_the_config() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer(
        [p], name="rmsprop", lr=2e-3, alpha=0.9, eps=1e-5, momentum=0.0, centered=True
    )
    assert type(opt) is torch.optim.RMSprop
    group = opt.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["centered"]) == (2e-3, 0.9, 1e-5, True)


def test_linear_schedule_reaches_one_percent_at_the_budget() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([p], name="rmsprop_released", lr=1.0)
    sched = build_scheduler(opt, schedule="linear", total_updates=100, final_lr_fraction=0.01)
    lrs = []
    for _ in range(120):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[50] == pytest.approx(1.0 - 0.99 * 0.5)
    assert lrs[100] == pytest.approx(0.01) and lrs[119] == pytest.approx(0.01)


def test_bad_optim_settings_fail_clearly() -> None:
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="unknown optim.name 'adam'"):
        build_optimizer(p, name="adam", lr=1e-3)
    with pytest.raises(ValueError, match="optim.lr must be > 0"):
        build_optimizer(p, name="rmsprop", lr=-1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        build_optimizer(p, name="rmsprop", lr=1e-3, betas=(0.9, 0.99))
    with pytest.raises(TypeError, match="'rms_floor'"):  # the released form's knob: not ignored
        build_optimizer(p, name="rmsprop", lr=1e-3, rms_floor=0.01)
    with pytest.raises(TypeError, match="'schedule'"):  # the scheduler's: build_optimization
        build_optimizer(p, name="rmsprop_released", lr=1e-3, schedule="linear")


def _lrs(scheduler, optimizer, n: int) -> list[float]:
    lrs = []
    for _ in range(n):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


def test_an_optim_config_splits_into_the_optimizer_and_its_schedule() -> None:
    """Both configs/optim files carry the schedule keys: they reach the scheduler and only it
    (plain RMSProp's final_lr_fraction 1.0 has no effect on its constant schedule)."""
    p = [torch.nn.Parameter(torch.zeros(1))]
    released = {"name": "rmsprop_released", "lr": 0.5, "decay": 0.95, "momentum": 0.9}
    released |= {"rms_floor": 0.01, "schedule": "linear", "final_lr_fraction": 0.01}
    optimizer, scheduler = build_optimization(p, released, total_updates=10)
    assert type(optimizer) is FlooredRMSprop and type(scheduler) is LinearLR
    assert optimizer.param_groups[0]["momentum"] == 0.9
    assert _lrs(scheduler, optimizer, 12)[10:] == pytest.approx([0.005, 0.005])

    plain = {"name": "rmsprop", "lr": 0.5, "alpha": 0.95, "eps": 1e-6, "momentum": 0.0}
    plain |= {"centered": False, "weight_decay": 0.0, "schedule": "constant"}
    for final in (1.0, 0.01):
        optimizer, scheduler = build_optimization(
            p, {**plain, "final_lr_fraction": final}, total_updates=10
        )
        assert type(optimizer) is torch.optim.RMSprop
        assert _lrs(scheduler, optimizer, 12) == [0.5] * 12
    # a linear schedule without final_lr_fraction decays to the released code's 1%
    optimizer, scheduler = build_optimization(p, {**plain, "schedule": "linear"}, total_updates=10)
    assert _lrs(scheduler, optimizer, 11)[10] == pytest.approx(0.005)


def test_update_cap_scales_the_applied_update_not_the_velocity_by_hand() -> None:
    """Released rule, three steps by hand over two tensors: v = m v - lr g / max(rms, floor);
    p += v min(1, cap / ||v||), ||v|| over every coordinate of both tensors; v keeps its size."""
    a = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    lr, decay, momentum, floor, cap = 0.1, 0.9, 0.5, 0.05, 0.25
    opt = FlooredRMSprop(
        [a, b], lr=lr, decay=decay, momentum=momentum, rms_floor=floor, max_update_norm=cap
    )
    grads = [([0.3, -0.01], [2.0]), ([-0.2, 0.02], [1.0]), ([0.001, 0.0], [-0.002])]
    p, avg, vel = [1.0, -2.0, 0.5], [0.0] * 3, [0.0] * 3
    scales = []
    for ga, gb in grads:
        g = ga + gb
        for i in range(3):
            avg[i] = decay * avg[i] + (1 - decay) * g[i] * g[i]
            vel[i] = momentum * vel[i] - lr * g[i] / max(math.sqrt(avg[i]), floor)
        norm = math.sqrt(sum(v * v for v in vel))
        scales.append(min(1.0, cap / norm))
        p = [p[i] + vel[i] * scales[-1] for i in range(3)]
        a.grad, b.grad = (
            torch.tensor(ga, dtype=torch.float64),
            torch.tensor(gb, dtype=torch.float64),
        )
        opt.step()
        assert opt.last_update_norm == pytest.approx(norm, rel=1e-12)
        got = torch.cat([a.detach(), b.detach()])
        torch.testing.assert_close(got, torch.tensor(p, dtype=torch.float64), rtol=1e-12, atol=0)
        velocity = torch.cat([opt.state[a]["velocity"], opt.state[b]["velocity"]])
        torch.testing.assert_close(
            velocity, torch.tensor(vel, dtype=torch.float64), rtol=1e-12, atol=0
        )
    # the cap bound on the first two steps and not on the third (its update is small)
    assert scales[0] < 1 and scales[1] < 1 and scales[2] == 1.0


def test_without_a_cap_the_released_rule_is_unchanged() -> None:
    """max_update_norm=None is the rule as it was (bit for bit), and a huge cap never binds."""
    gen = torch.Generator().manual_seed(3)
    init = [torch.randn(5, 4, generator=gen), torch.randn(7, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in init] for _ in range(4)]
    results = []
    for cap in (None, 1e9):
        params = [torch.nn.Parameter(t.clone()) for t in init]
        opt = FlooredRMSprop(params, lr=0.01, max_update_norm=cap)
        for step in grads:
            for p, g in zip(params, step, strict=True):
                p.grad = g.clone()
            opt.step()
        results.append([p.detach() for p in params])
    for x, y in zip(*results, strict=True):
        assert torch.equal(x, y)


def test_a_bad_update_cap_fails_clearly() -> None:
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="optim.max_update_norm must be > 0 or null, got 0"):
        FlooredRMSprop(p, max_update_norm=0)
