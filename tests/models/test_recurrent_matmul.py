"""The packed AVX-512 recurrent product (csrc/recurrent_matmul.h) and its switch.

``recurrent_matmul(c, a, w, alpha, beta)`` is the product the C++ loops run at every step,
c = beta c + alpha a @ w. It must equal torch's matmul up to float32 rounding for any shape
(rows and columns that do not fill a register block, gate-block views with row strides,
transposed weights), never read c when beta = 0, and be what the units use on this CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from unit_cases import VARIANTS, make_case, run_unit

from gru_repro.models import kernels

pytestmark = pytest.mark.cpp


def _cpu_has_avx512f() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.is_file() and "avx512f" in cpuinfo.read_text().split()


# (rows M, inner K, columns N): the paper's step products (batch 16; speech LSTM 195 -> 780 and
# back, music GRU 46), single rows, and tails of the 8-row x 48-column blocks
SHAPES = [
    (16, 195, 780),
    (16, 780, 195),
    (16, 46, 92),
    (1, 195, 780),
    (7, 49, 97),
    (9, 48, 48),
    (17, 3, 1),
    (1, 1, 1),
]


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "torch"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "M{}K{}N{}".format(*s))
def test_product_matches_torch(cpp_loops, shape, packed: bool) -> None:
    m, k, n = shape
    gen = torch.Generator().manual_seed(m * 1000 + k + n)
    a = torch.randn(m, k, generator=gen)
    w = torch.randn(n, k, generator=gen).t()  # a transposed view, as the loops pass U^T
    c = torch.randn(m, n, generator=gen)
    expected = (0.5 * c.double() + 2.0 * a.double() @ w.double()).float()
    with kernels.use_packed_matmul(packed):
        cpp_loops.recurrent_matmul(c, a, w, 2.0, 0.5)
    torch.testing.assert_close(c, expected, rtol=1e-5, atol=1e-4 * k**0.5)


def test_product_with_row_strides_writes_only_its_block(cpp_loops) -> None:
    """a and c as gate blocks of wider (B, 3H) rows: the other columns stay untouched."""
    gen = torch.Generator().manual_seed(1)
    a_rows, c_rows = torch.randn(16, 3 * 50, generator=gen), torch.randn(16, 3 * 50, generator=gen)
    w = torch.randn(50, 100, generator=gen)
    a = a_rows[:, 100:150]  # the third block, row stride 150
    before = c_rows.clone()
    cpp_loops.recurrent_matmul(c_rows[:, :100], a, w, 1.0, 1.0)
    torch.testing.assert_close(c_rows[:, :100], before[:, :100] + a @ w, rtol=1e-5, atol=1e-4)
    assert torch.equal(c_rows[:, 100:], before[:, 100:])


def test_beta_zero_ignores_garbage_in_the_output(cpp_loops) -> None:
    a, w = torch.randn(16, 20), torch.randn(20, 60)
    c = torch.full((16, 60), float("nan"))
    cpp_loops.recurrent_matmul(c, a, w, 1.0, 0.0)
    torch.testing.assert_close(c, a @ w, rtol=1e-5, atol=1e-4)


def test_float64_products_are_exactly_torchs(cpp_loops) -> None:
    """float64 (tests, gradcheck) never takes the float32 kernel: bit-equal to torch.mm."""
    a, w = torch.randn(16, 30, dtype=torch.float64), torch.randn(30, 90, dtype=torch.float64)
    c = torch.empty(16, 90, dtype=torch.float64)
    cpp_loops.recurrent_matmul(c, a, w, 1.0, 0.0)
    assert torch.equal(c, a @ w)


def test_bad_shapes_are_refused(cpp_loops) -> None:
    with pytest.raises(RuntimeError, match="shapes must be"):
        cpp_loops.recurrent_matmul(
            torch.empty(4, 5), torch.empty(4, 3), torch.empty(2, 5), 1.0, 0.0
        )


def test_packed_kernel_runs_where_the_cpu_has_avx512(cpp_loops) -> None:
    expected = "packed-avx512" if _cpu_has_avx512f() else "torch"
    assert kernels.recurrent_matmul_in_use("cpu") == expected
    with kernels.use_packed_matmul(False) as on:
        assert not on and kernels.recurrent_matmul_in_use("cpu") == "torch"
    assert kernels.recurrent_matmul_in_use("cpu") == expected  # switched back


def test_environment_switch_to_torch(cpp_loops, monkeypatch) -> None:
    monkeypatch.setattr(kernels, "_module", None)
    monkeypatch.setattr(kernels, "_error", None)
    monkeypatch.setenv(kernels.MATMUL_ENV_VAR, "torch")
    try:
        with kernels.use_backend("cpp"):
            assert kernels.recurrent_matmul_in_use("cpu") == "torch"
    finally:
        cpp_loops.set_packed_matmul(True)  # the switch lives in the shared library
    monkeypatch.setenv(kernels.MATMUL_ENV_VAR, "blas")
    with pytest.raises(ValueError, match="GRU_REPRO_MATMUL"):
        kernels.matmul_choice()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_units_agree_with_either_product(cpp_loops, name: str) -> None:
    """A whole unit, forward and backward in float32 at the paper's batch 16: the packed
    products change the results only by rounding."""
    layer, x, state, weights = make_case(name, (20, 16, 20, 60), dtype=torch.float32, seed=2)
    with kernels.use_packed_matmul(False):
        out_torch, grads_torch = run_unit(layer, x, state, weights, "cpp")
    with kernels.use_packed_matmul(True):
        out_packed, grads_packed = run_unit(layer, x, state, weights, "cpp")
    for a, b in zip(out_torch + grads_torch, out_packed + grads_packed, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
