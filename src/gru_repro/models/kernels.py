"""Backend switch for the units' loops over time: the C++ extension or plain Python.

Both backends implement one contract, the same functions with the same arguments in the same
order: ``csrc/loops.cpp`` (built on first use with ``torch.utils.cpp_extension.load``, JIT,
cached) and :mod:`gru_repro.models.loops_python`. :func:`loops_for` returns one of the two as a
module, and each unit's autograd Function calls it the same way::

    loops = kernels.loops_for(x)                # the C++ module or loops_python
    loops.paper_gru_forward(gates, h0, ...)     # the loop over time, in place

Everything else (input projections before, weight gradients after) is the units' own Python
code, shared by both, so the two agree up to rounding. Both also take a population's member
layout (stacked (P, K, N) weights, (P, T, B, K) sequences; models/population_fused.py).

Which backend: the run setting ``trainer.backend`` (configs/trainer/default.yaml; applied by
the trainer with :func:`use_setting`), else the environment variable ``GRU_REPRO_KERNELS``;
both take

- ``auto`` (default): the C++ loops if the extension builds (or is already built), else the
  Python loops, with a one-line warning (once per process).
- ``cpp``: the C++ loops; an error if the extension cannot be built.
- ``python``: the Python loops; never build (no compiler needed).

``trainer.backend=auto`` leaves the choice to ``GRU_REPRO_KERNELS``. The backend does not
change what a run computes beyond rounding, so it is not part of a run's identity
(gru_repro.config.identity); metrics.json records the loops that ran (:func:`loops_in_use`).

Inside the C++ loops, the recurrent product of every step (h_{t-1} U^T, and its transpose in
the backward) runs through a packed AVX-512 kernel (``csrc/recurrent_matmul.h``) for float32
on CPUs with AVX-512F, else through torch's matmul; ``GRU_REPRO_MATMUL=torch`` forces the
latter (``auto``, the default, picks the former where it can). The two agree up to rounding;
:func:`recurrent_matmul_in_use` says which one runs (metrics.json records it).

The build goes to torch's extension cache (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``), in a folder named after a hash of the sources and flags and a
hash of where they are (:func:`extension_name`), so a changed source rebuilds and two checkouts
on one machine never rebuild each other's. The first build takes about 30 s and says so in one
warning-level log line (shown by default, also under Hydra and the scripts). It is compiled at
run time rather than at install time because it is built against the torch found at run time
(``pip install .`` needs no torch to build, and editable installs get the same path).
``python -m gru_repro.models.kernels --build`` builds it ahead of time (``make install`` does)
and prints where it went.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from gru_repro.config.checks import ConfigError
from gru_repro.models import loops_python

ENV_VAR = "GRU_REPRO_KERNELS"
SETTING = "trainer.backend"  # the run setting of the same choice (configs/trainer/default.yaml)
BACKENDS = ("auto", "cpp", "python")
MATMUL_ENV_VAR = "GRU_REPRO_MATMUL"
MATMULS = ("auto", "torch")
CSRC = Path(__file__).with_name("csrc")
SOURCE = CSRC / "loops.cpp"
HEADERS = sorted(CSRC.glob("*.h"))  # included by loops.cpp: part of the build's hash
# -fno-trapping-math lets the compiler turn the clamps in fast_exp into vector selects; it does
# not change any result (nothing enables floating-point traps; torch itself is built with it).
# No -march=native (the build must run on any x86-64), no -ffast-math (it would change results).
EXTRA_CFLAGS = ["-O3", "-fno-trapping-math"]

_forced: str | None = None  # set by use_backend(), wins over the environment
_module: ModuleType | None = None
_error: Exception | None = None  # why the build failed, if it did
_warned = False

log = logging.getLogger(__name__)


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


@contextlib.contextmanager
def use_setting(name: str) -> Iterator[ModuleType]:
    """Within the block, the backend of a run's ``trainer.backend`` setting; yields the loops
    module float32 CPU tensors run through. ``auto`` keeps ``$GRU_REPRO_KERNELS``' choice.

    Raises ConfigError (one line naming the setting and what to do) for an unknown name, or
    for ``cpp`` when the C++ loops cannot be built here.
    """
    if name not in BACKENDS:
        raise ConfigError(f"{SETTING}={name!r}: choose one of {', '.join(BACKENDS)}")
    with use_backend(name) if name != "auto" else contextlib.nullcontext():
        try:
            module = loops()
        except LoopsUnavailable as exc:  # backend cpp: the setting's, or the environment's
            asked = f"{SETTING}=cpp" if name == "cpp" else f"{ENV_VAR}=cpp ({SETTING}=auto)"
            raise ConfigError(
                f"{asked} but the C++ loops cannot be built here ({exc.reason}): install a "
                f"C++ compiler and ninja, or set {SETTING}=python (or auto)"
            ) from exc
        yield module


class LoopsUnavailable(RuntimeError):
    """Backend ``cpp`` was asked for and the extension cannot be built (``reason``: one line)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def extension_name(csrc: Path | None = None) -> str:
    """Module name of the build from the sources in ``csrc`` (default :data:`CSRC`: loops.cpp
    and its headers): ``gru_repro_loops_<text>_<place>``.

    ``<text>`` changes with the sources' text and the compiler flags (a changed source
    rebuilds). ``<place>`` changes with where the build reads from: the sources' absolute
    folder (the checkout, or the installed package) and torch's folder and version. torch's
    build file (build.ninja) holds those absolute paths, so two checkouts sharing one build
    folder would each find the other's build file and recompile (~25 s) in turn.
    """
    csrc = Path(CSRC if csrc is None else csrc).resolve()
    sources = [csrc / SOURCE.name, *sorted(csrc.glob("*.h"))]
    text = b"".join(path.read_bytes() for path in sources) + " ".join(EXTRA_CFLAGS).encode()
    place = "\n".join([str(csrc), str(Path(torch.__file__).resolve().parent), torch.__version__])
    text_hash = hashlib.sha256(text).hexdigest()[:12]
    place_hash = hashlib.sha256(place.encode()).hexdigest()[:8]
    return f"gru_repro_loops_{text_hash}_{place_hash}"


def build_directory(csrc: Path | None = None) -> Path:
    """The build folder of the sources in ``csrc``: ``<root>/<extension_name(csrc)>``, root
    ``$TORCH_EXTENSIONS_DIR`` or torch's default (``~/.cache/torch_extensions``). The name
    already tells Python and torch builds apart, so no per-version subfolder is needed."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if not root:
        from torch.utils.cpp_extension import get_default_build_root

        root = get_default_build_root()
    return Path(root) / extension_name(csrc)


def _build(verbose: bool = False) -> ModuleType:
    from torch.utils.cpp_extension import LIB_EXT, load  # slow import: only when building

    name = extension_name(SOURCE.parent)
    folder = build_directory(SOURCE.parent)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / f"{name}{LIB_EXT}").is_file():
        # warning level: the default level of Python's logging and of the scripts shows it
        log.warning("compiling the C++ loops (once, about 30 s) into %s", folder)
    return load(
        name=name,
        sources=[str(SOURCE)],
        extra_cflags=EXTRA_CFLAGS,
        build_directory=str(folder),
        verbose=verbose,
    )


def loops() -> ModuleType:
    """The loops module of the backend in force: the compiled C++ module, or
    :mod:`gru_repro.models.loops_python` (backend ``python``, or ``auto`` without a build).

    Raises LoopsUnavailable (a RuntimeError) under backend ``cpp`` if the extension cannot be
    built.
    """
    global _module, _error, _warned
    name = backend()
    if name == "python":
        return loops_python
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
        raise LoopsUnavailable(
            f"{ENV_VAR}=cpp but the C++ loops could not be built from {SOURCE}: {_error}",
            f"{type(_error).__name__}: {_summary(_error)}",
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
    return loops_python


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


def loops_for(x: torch.Tensor) -> ModuleType:
    """:func:`loops` for tensors like ``x``: loops_python unless x is a float32 or float64 CPU
    tensor, the only ones the C++ loops handle (CUDA tensors run the Python loops)."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return loops_python
    return loops()


def loops_in_use(device: str | torch.device = "cpu") -> str:
    """``"cpp"`` or ``"python"``: which loops float32 tensors on ``device`` run through (for
    metrics.json; runs with the two backends agree up to rounding, not bit for bit)."""
    probe = torch.empty(0, device=torch.device(device))
    return "python" if loops_for(probe) is loops_python else "cpp"


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
    if module is loops_python:
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
    return "torch" if module is loops_python or not module.packed_matmul_on() else "packed-avx512"


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
