"""Backend switch for the units' per-time-step loops: C++ extension or plain Python.

The recurrent units (tanh_rnn.py, gru.py, lstm.py) run their forward and backward loops over
time either in ``csrc/loops.cpp`` (built on first use with ``torch.utils.cpp_extension.load``,
JIT, cached) or in Python. Everything else (input projections, the backward's elementwise
factors, weight gradients) is the same Python code for both, so the two agree up to rounding.

Environment variable ``GRU_REPRO_KERNELS``:

- ``auto`` (default): the C++ loops if the extension builds (or is already built), else the
  Python loops, with a one-line warning (once per process).
- ``cpp``: the C++ loops; raise if the extension cannot be built.
- ``python``: the Python loops; never build (no compiler needed).

Inside the C++ loops, the recurrent product of every step (h_{t-1} U^T, and its transpose in
the backward) runs through a packed AVX-512 kernel (``csrc/recurrent_matmul.h``) for float32
on CPUs with AVX-512F, else through torch's matmul; ``GRU_REPRO_MATMUL=torch`` forces the
latter (``auto``, the default, picks the former where it can). The two agree up to rounding;
:func:`recurrent_matmul_in_use` says which one runs (metrics.json records it).

The build goes to torch's extension cache (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``), in a folder named after a hash of the source, so checkouts with
different sources do not rebuild each other's. ``python -m gru_repro.models.kernels --build``
builds it ahead of time (``make install`` does) and prints where it went.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

ENV_VAR = "GRU_REPRO_KERNELS"
BACKENDS = ("auto", "cpp", "python")
MATMUL_ENV_VAR = "GRU_REPRO_MATMUL"
MATMULS = ("auto", "torch")
SOURCE = Path(__file__).with_name("csrc") / "loops.cpp"
HEADERS = sorted(SOURCE.parent.glob("*.h"))  # included by loops.cpp: part of the build's hash
# -fno-trapping-math lets the compiler turn the clamps in fast_exp into vector selects; it does
# not change any result (nothing enables floating-point traps; torch itself is built with it).
# No -march=native (the build must run on any x86-64), no -ffast-math (it would change results).
EXTRA_CFLAGS = ["-O3", "-fno-trapping-math"]

_forced: str | None = None  # set by use_backend(), wins over the environment
_module: ModuleType | None = None
_error: Exception | None = None  # why the build failed, if it did
_warned = False


def backend() -> str:
    """The requested backend: ``use_backend``'s if active, else ``$GRU_REPRO_KERNELS``."""
    name = _forced or os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if name not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={name!r}: choose one of {', '.join(BACKENDS)}")
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within the block, use backend ``name`` whatever the environment says (tests, bench)."""
    global _forced
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous


def extension_name() -> str:
    """Module name of the build: changes with the source and the compiler flags."""
    sources = b"".join(path.read_bytes() for path in [SOURCE, *HEADERS])
    digest = hashlib.sha256(sources + " ".join(EXTRA_CFLAGS).encode()).hexdigest()
    return f"gru_repro_loops_{digest[:12]}"


def _build(verbose: bool = False) -> ModuleType:
    from torch.utils.cpp_extension import load  # slow import: only when building

    return load(
        name=extension_name(),
        sources=[str(SOURCE)],
        extra_cflags=EXTRA_CFLAGS,
        verbose=verbose,
    )


def loops() -> ModuleType | None:
    """The compiled loops module, or None when the Python loops are to be used.

    Raises RuntimeError under backend ``cpp`` if the extension cannot be built.
    """
    global _module, _error, _warned
    name = backend()
    if name == "python":
        return None
    if _module is None and _error is None:
        try:
            _module = _build()
        except Exception as exc:  # compiler missing, build error, ninja missing, ...
            _error = exc
        else:
            _module.set_packed_matmul(matmul_choice() == "auto")
    if _module is not None:
        return _module
    if name == "cpp":
        raise RuntimeError(
            f"{ENV_VAR}=cpp but the C++ loops could not be built from {SOURCE}: {_error}"
        ) from _error
    if not _warned:
        _warned = True
        warnings.warn(
            f"gru_repro: C++ loops unavailable ({type(_error).__name__}: {_summary(_error)}); "
            f"using the slower Python loops (set {ENV_VAR}=cpp to see the error, "
            f"{ENV_VAR}=python to silence this)",
            RuntimeWarning,
            stacklevel=2,
        )
    return None


def _summary(error: BaseException) -> str:
    """One short line from a (possibly long, multi-line) build error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    telling = [
        line
        for line in lines
        if ("error" in line.lower() or "not found" in line)
        and not line.startswith("Error building extension")
    ]
    line = (telling or lines or [""])[0]
    return line if len(line) <= 160 else line[:157] + "..."


def loops_for(x: torch.Tensor) -> ModuleType | None:
    """:func:`loops` for tensors like ``x``: None (the Python loops) unless x is a float32 or
    float64 CPU tensor, the only ones the C++ loops handle."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return None
    return loops()


def loops_in_use(device: str | torch.device = "cpu") -> str:
    """``"cpp"`` or ``"python"``: which loops float32 tensors on ``device`` run through (for
    metrics.json; runs with the two backends agree up to rounding, not bit for bit)."""
    probe = torch.empty(0, device=torch.device(device))
    return "cpp" if loops_for(probe) is not None else "python"


def matmul_choice() -> str:
    """The requested recurrent product: ``$GRU_REPRO_MATMUL`` (``auto`` or ``torch``)."""
    name = os.environ.get(MATMUL_ENV_VAR, "").strip().lower() or "auto"
    if name not in MATMULS:
        raise ValueError(f"{MATMUL_ENV_VAR}={name!r}: choose one of {', '.join(MATMULS)}")
    return name


@contextlib.contextmanager
def use_packed_matmul(on: bool) -> Iterator[bool]:
    """Within the block, the C++ loops' recurrent products run through the packed kernel
    (``on``, where the CPU supports it) or through torch's matmul; yields whether the packed
    kernel is on. For tests and the bench; needs the C++ loops."""
    module = loops()
    if module is None:
        raise RuntimeError("use_packed_matmul needs the C++ loops (GRU_REPRO_KERNELS != python)")
    previous = module.packed_matmul_on()
    try:
        yield module.set_packed_matmul(on)
    finally:
        module.set_packed_matmul(previous)


def recurrent_matmul_in_use(device: str | torch.device = "cpu") -> str:
    """``"packed-avx512"`` or ``"torch"``: what the recurrent products of float32 tensors on
    ``device`` run through (``"torch"`` under the Python loops too)."""
    probe = torch.empty(0, device=torch.device(device))
    module = loops_for(probe)
    return "packed-avx512" if module is not None and module.packed_matmul_on() else "torch"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the C++ loops of the recurrent units.")
    parser.add_argument("--build", action="store_true", help="build (or find) the extension")
    parser.add_argument("--verbose", action="store_true", help="show the compiler's commands")
    args = parser.parse_args(argv)
    if not args.build:
        parser.error("nothing to do: pass --build")
    if backend() == "python":
        print(f"{ENV_VAR}=python: not building the C++ loops")
        return
    start = time.perf_counter()
    try:
        module = _build(verbose=args.verbose)
    except Exception as exc:
        if backend() == "cpp":
            raise
        print(f"could not build the C++ loops ({type(exc).__name__}); the Python loops will run")
        return
    seconds = time.perf_counter() - start
    print(f"C++ loops ready in {Path(module.__file__).parent} ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
