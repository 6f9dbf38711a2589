"""The two RMSProp forms and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

from gru_repro.training.optim import FlooredRMSprop, build_optimizer, build_scheduler


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
