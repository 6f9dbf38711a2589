"""The loop contract: the C++ loops (csrc/loops.cpp) against the Python loops
(models/loops_python.py), function by function, and the backend switch.

Tests marked ``cpp`` build the extension and FAIL if it cannot be built (CI has a compiler).
Without a compiler, run the rest with ``GRU_REPRO_KERNELS=python pytest -m "not cpp"``.
"""

from __future__ import annotations

import inspect
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from unit_cases import VARIANTS, make_case, run_unit

from gru_repro.models import kernels, loops_python
from gru_repro.models.gru import PaperGRUFunction, ResetAfterGRUFunction
from gru_repro.models.lstm import LSTMFunction
from gru_repro.models.tanh_rnn import TanhRNNFunction

# (T, B, I, H): batch 1 and a single step included
SIZES = [(1, 1, 3, 4), (6, 1, 2, 5), (1, 4, 3, 5), (9, 3, 5, 6), (4, 7, 1, 1)]


@pytest.mark.cpp
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("name", list(VARIANTS))
def test_cpp_equals_python_float64(cpp_loops, name: str, size) -> None:
    layer, x, state, weights = make_case(name, size)
    out_py, grads_py = run_unit(layer, x, state, weights, "python")
    out_cpp, grads_cpp = run_unit(layer, x, state, weights, "cpp")
    assert len(grads_py) == len(grads_cpp) >= 5
    for a, b in zip(out_py, out_cpp, strict=True):
        torch.testing.assert_close(b, a)
    for a, b in zip(grads_py, grads_cpp, strict=True):
        assert a is not None and b is not None
        torch.testing.assert_close(b, a)


@pytest.mark.cpp
@pytest.mark.parametrize("name", list(VARIANTS))
def test_cpp_equals_python_random_size(cpp_loops, name: str) -> None:
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    size = tuple(int(v) for v in torch.randint(1, 12, (4,), generator=gen))
    layer, x, state, weights = make_case(name, size, seed=3)
    out_py, grads_py = run_unit(layer, x, state, weights, "python")
    out_cpp, grads_cpp = run_unit(layer, x, state, weights, "cpp")
    for a, b in zip(out_py + grads_py, out_cpp + grads_cpp, strict=True):
        torch.testing.assert_close(b, a)


@pytest.mark.cpp
@pytest.mark.parametrize("scale", [1.0, 60.0], ids=["normal", "saturated"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_cpp_float32_close_to_python(cpp_loops, name: str, scale: float) -> None:
    """float32 runs the vectorised exp/sigmoid/tanh: close to torch's, finite when saturated."""
    layer, x, state, weights = make_case(name, (12, 5, 4, 9), dtype=torch.float32, scale=scale)
    out_py, grads_py = run_unit(layer, x, state, weights, "python")
    out_cpp, grads_cpp = run_unit(layer, x, state, weights, "cpp")
    for a, b in zip(out_py + grads_py, out_cpp + grads_cpp, strict=True):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def _function_inputs(name: str, steps=3, batch=2, input_size=3, hidden=2):
    layer, x, state, _ = make_case(name, (steps, batch, input_size, hidden), seed=5)
    params = [p.detach().clone() for p in layer.parameters()]
    if name == "lstm_no_peephole":
        params.append(None)
    args = [x, *state, *params]
    return [a.requires_grad_() if a is not None else None for a in args]


FUNCTIONS = {
    "tanh": TanhRNNFunction,
    "gru": PaperGRUFunction,
    "gru_reset_after": ResetAfterGRUFunction,
    "lstm": LSTMFunction,
    "lstm_no_peephole": LSTMFunction,
}


@pytest.mark.cpp
@pytest.mark.parametrize("name", list(VARIANTS))
def test_gradcheck_cpp(cpp_loops, name: str) -> None:
    args = _function_inputs(name)
    with kernels.use_backend("cpp"):
        assert torch.autograd.gradcheck(FUNCTIONS[name].apply, args)


# The contract: these functions, in both backends, and nothing else called by the units.
CONTRACT = sorted(
    f"{cell}_{way}"
    for cell in ("tanh", "paper_gru", "reset_after_gru", "lstm")
    for way in ("forward", "backward")
)


def _cpp_arguments(function) -> list[str]:
    """Argument names of a pybind11 function, from its signature line
    ``name(out: torch.Tensor, h0: ...) -> None``."""
    line = function.__doc__.splitlines()[0]
    inside = line[line.index("(") + 1 : line.rindex(") ->")]
    return re.findall(r"(\w+): ", inside)


@pytest.mark.cpp
def test_both_backends_have_the_same_functions_and_arguments(cpp_loops) -> None:
    """Same names, argument names and argument order in loops.cpp and loops_python.py."""
    python_functions = sorted(
        name
        for name, value in vars(loops_python).items()
        if inspect.isfunction(value) and value.__module__ == loops_python.__name__
        and not name.startswith("_")
    )  # fmt: skip
    assert python_functions == CONTRACT
    for name in CONTRACT:
        python_arguments = list(inspect.signature(getattr(loops_python, name)).parameters)
        assert _cpp_arguments(getattr(cpp_loops, name)) == python_arguments, name


@pytest.mark.cpp
def test_a_wrong_argument_name_is_named(cpp_loops) -> None:
    """The bindings carry argument names: keywords work, and a wrong one gets an error that
    lists the right ones."""
    h = torch.zeros(2, 1, 3)
    cpp_loops.tanh_forward(out=h, h0=torch.zeros(1, 3), w_hh_t=torch.eye(3))
    wrong = r"(?s)tanh_forward\(\): incompatible.*w_hh_t: torch.Tensor.*weight_hh="
    with pytest.raises(TypeError, match=wrong):
        cpp_loops.tanh_forward(out=h, h0=torch.zeros(1, 3), weight_hh=torch.eye(3))


@pytest.mark.parametrize("backend", ["python", pytest.param("cpp", marks=pytest.mark.cpp)])
def test_units_call_the_selected_loops(request, monkeypatch, backend: str) -> None:
    """The units run every contract function of the selected backend (not silently the
    other one), and nothing else of it."""
    calls: list[str] = []
    module = request.getfixturevalue("cpp_loops") if backend == "cpp" else loops_python

    class Spy:
        def __getattr__(self, attr):
            calls.append(attr)
            return getattr(module, attr)

    if backend == "cpp":
        monkeypatch.setattr(kernels, "_module", Spy())
    else:
        for name in CONTRACT:
            function = getattr(loops_python, name)
            monkeypatch.setattr(
                loops_python, name, lambda *a, _f=function, _n=name: calls.append(_n) or _f(*a)
            )
    for name in VARIANTS:
        layer, x, state, weights = make_case(name, (3, 2, 3, 4))
        run_unit(layer, x, state, weights, backend)
    assert sorted(set(calls)) == CONTRACT


def test_tanh_forward_forms_agree() -> None:
    """The Python tanh loop's two forms (tanh directly below SIGMOID_FORM_MIN_BATCH, the
    sigmoid form from there on) give the same h_t."""
    gen = torch.Generator().manual_seed(4)
    batch = loops_python.SIGMOID_FORM_MIN_BATCH
    pre = torch.randn(7, batch, 5, generator=gen, dtype=torch.float64)
    h0 = torch.randn(batch, 5, generator=gen, dtype=torch.float64)
    w_hh_t = torch.randn(5, 5, generator=gen, dtype=torch.float64) / 2
    sigmoid_form, tanh_form = pre.clone(), pre.clone()
    loops_python.tanh_forward(sigmoid_form, h0, w_hh_t)
    for row in range(batch):  # one sequence at a time: below the threshold
        loops_python.tanh_forward(tanh_form[:, row : row + 1], h0[row : row + 1], w_hh_t)
    h, expected = h0, []
    for t in range(pre.shape[0]):
        h = torch.tanh(pre[t] + h @ w_hh_t)
        expected.append(h)
    torch.testing.assert_close(sigmoid_form, torch.stack(expected))
    torch.testing.assert_close(tanh_form, torch.stack(expected))


# --- the switch itself (no compiler needed) ---------------------------------------------------


@pytest.fixture
def fresh_kernels(monkeypatch):
    """kernels with no build attempted yet and no override; restored afterwards."""
    monkeypatch.setattr(kernels, "_module", None)
    monkeypatch.setattr(kernels, "_error", None)
    monkeypatch.setattr(kernels, "_warned", False)
    monkeypatch.setattr(kernels, "_forced", None)
    return kernels


def _failing_build(verbose: bool = False):
    raise RuntimeError("Error building extension 'x': no compiler\nmore lines")


def test_backend_python_never_builds(fresh_kernels, monkeypatch) -> None:
    monkeypatch.setenv(kernels.ENV_VAR, "python")
    monkeypatch.setattr(kernels, "_build", _failing_build)
    assert kernels.backend() == "python"
    assert kernels.loops() is loops_python


def test_backend_unknown_value_is_an_error(fresh_kernels, monkeypatch) -> None:
    monkeypatch.setenv(kernels.ENV_VAR, "fortran")
    with pytest.raises(ValueError, match="GRU_REPRO_KERNELS"):
        kernels.loops()
    with pytest.raises(ValueError, match="unknown backend"):
        with kernels.use_backend("fortran"):
            pass


def test_auto_falls_back_with_one_warning(fresh_kernels, monkeypatch) -> None:
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    monkeypatch.setattr(kernels, "_build", _failing_build)
    assert kernels.backend() == "auto"
    with pytest.warns(RuntimeWarning, match="Python loops") as record:
        assert kernels.loops() is loops_python
        assert kernels.loops() is loops_python  # warned once only
    assert len(record) == 1
    assert "\n" not in str(record[0].message)
    # ... and the units still work, on the Python loops
    layer, x, state, weights = make_case("gru", (3, 2, 3, 4))
    outputs, grads = run_unit(layer, x, state, weights, "auto")
    assert torch.isfinite(outputs[0]).all() and all(g is not None for g in grads)


def test_cpp_raises_when_the_build_fails(fresh_kernels, monkeypatch) -> None:
    monkeypatch.setenv(kernels.ENV_VAR, "cpp")
    monkeypatch.setattr(kernels, "_build", _failing_build)
    with pytest.raises(RuntimeError, match="could not be built") as error:
        kernels.loops()
    assert isinstance(error.value, kernels.LoopsUnavailable)
    assert error.value.reason == "RuntimeError: Error building extension 'x': no compiler"


def test_use_backend_overrides_environment(fresh_kernels, monkeypatch) -> None:
    monkeypatch.setenv(kernels.ENV_VAR, "cpp")
    with kernels.use_backend("python"):
        assert kernels.backend() == "python"
        assert kernels.loops() is loops_python
    assert kernels.backend() == "cpp"


def _copy_sources(folder: Path) -> Path:
    """A copy of the package's csrc/ (loops.cpp and its headers) in ``folder``."""
    shutil.copytree(kernels.CSRC, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _text_and_place(name: str) -> tuple[str, str]:
    prefix, text, place = name.rsplit("_", 2)
    assert prefix == "gru_repro_loops" and name.isidentifier()
    return text, place


def test_extension_name_follows_the_source(tmp_path: Path, monkeypatch) -> None:
    """Editing loops.cpp, or a header it includes, changes the name and folder of the build
    that ``_build`` loads (so a changed source rebuilds); where the sources are stays in the
    name's second part only. The build is that of kernels.SOURCE, pointed here at a copy."""
    import torch.utils.cpp_extension as cpp_extension

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    loads: list[dict] = []
    monkeypatch.setattr(cpp_extension, "load", lambda **options: loads.append(options))
    csrc = _copy_sources(tmp_path / "csrc")
    monkeypatch.setattr(kernels, "SOURCE", csrc / "loops.cpp")
    kernels._build()
    for edited in (csrc / "loops.cpp", sorted(csrc.glob("*.h"))[0]):
        edited.write_text(edited.read_text() + "\n// one more line\n")
        kernels._build()

    names = [options["name"] for options in loads]
    assert [options["sources"] for options in loads] == [[str(csrc / "loops.cpp")]] * 3
    texts = [_text_and_place(name)[0] for name in names]
    places = {_text_and_place(name)[1] for name in names}
    assert len(set(texts)) == 3 and len(places) == 1  # new text each time, same place
    assert texts[0] == _text_and_place(kernels.extension_name())[0]  # unchanged copy: same text
    assert [options["build_directory"] for options in loads] == [
        str(tmp_path / "cache" / name) for name in names
    ]


@pytest.mark.subprocess
def test_two_checkouts_never_share_a_build_folder(tmp_path: Path, monkeypatch) -> None:
    """The same sources in two checkouts get two build folders (torch's build file holds the
    absolute source path, so a shared folder would rebuild in turn); one checkout always gets
    the same folder, in this process and in a fresh one."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    first = _copy_sources(tmp_path / "checkout_a" / "csrc")
    second = _copy_sources(tmp_path / "checkout_b" / "csrc")

    folder_a, folder_b = kernels.build_directory(first), kernels.build_directory(second)
    assert folder_a != folder_b and folder_a.parent == folder_b.parent == tmp_path / "cache"
    text_a, place_a = _text_and_place(folder_a.name)
    text_b, place_b = _text_and_place(folder_b.name)
    assert text_a == text_b and place_a != place_b
    assert kernels.build_directory(tmp_path / "checkout_a" / "csrc") == folder_a

    show_folder = (
        "import sys; from gru_repro.models import kernels; "
        "print(kernels.build_directory(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", show_folder, str(first)], capture_output=True, text=True, check=True
    )
    assert Path(done.stdout.strip()) == folder_a


def test_first_build_says_where_it_compiles(tmp_path: Path, monkeypatch, caplog) -> None:
    """Before compiling, one warning-level line (shown at logging's default level) names the
    build folder; once the library is there, nothing is said. torch's load gets that folder."""
    import torch.utils.cpp_extension as cpp_extension

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    calls: list[dict] = []

    def fake_load(**options):
        calls.append(options)
        return "compiled module"

    monkeypatch.setattr(cpp_extension, "load", fake_load)
    folder = kernels.build_directory()
    with caplog.at_level(logging.WARNING, logger=kernels.__name__):
        assert kernels._build() == "compiled module"
    messages = [r for r in caplog.records if "compiling the C++ loops" in r.getMessage()]
    assert len(messages) == 1 and messages[0].levelno >= logging.WARNING
    assert str(folder) in messages[0].getMessage()
    assert calls[0]["build_directory"] == str(folder) and calls[0]["name"] == folder.name

    (folder / f"{folder.name}{cpp_extension.LIB_EXT}").write_bytes(b"")  # as if built
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=kernels.__name__):
        kernels._build()
    assert not [r for r in caplog.records if "compiling" in r.getMessage()]
    assert len(calls) == 2  # still loaded through torch (it checks the build is current)


def test_loops_for_other_dtypes_is_python(fresh_kernels, monkeypatch) -> None:
    """Only float32/float64 CPU tensors go to the C++ loops; others keep the Python loops."""
    monkeypatch.setattr(kernels, "_build", _failing_build)  # must not even be attempted
    with kernels.use_backend("cpp"):
        assert kernels.loops_for(torch.zeros(2, dtype=torch.float16)) is loops_python
        assert kernels.loops_for(torch.zeros(2, dtype=torch.bfloat16)) is loops_python


def test_loops_in_use_names_the_backend_a_run_records(cpp_loops) -> None:
    with kernels.use_backend("cpp"):
        assert kernels.loops_in_use("cpu") == "cpp"
    with kernels.use_backend("python"):
        assert kernels.loops_in_use("cpu") == "python"
