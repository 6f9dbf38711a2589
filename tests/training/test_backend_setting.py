"""trainer.backend, the run setting of the units' time loops: it picks the loops a run trains
with and records them, leaves the run's identity alone, and fails in one line (exit code 2)
when it asks for C++ loops that cannot be built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gru_repro.config import ConfigError
from gru_repro.config.store import identity_of
from gru_repro.models import kernels, loops_python
from gru_repro.train import CONFIG_DIR, run

TINY = [
    "data.n_train=4", "data.n_valid=2", "data.n_test=2", "data.min_length=4", "data.max_length=8",
    "trainer.max_epochs=1", "trainer.batch_size=4", "model=tanh", "model.hidden_size=3",
]  # fmt: skip


def tiny_config(*overrides: str):
    """The real config shrunk to about a second: tiny synthetic data, one epoch."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=[*TINY, *overrides])


def _failing_build(verbose: bool = False):
    raise RuntimeError("Error building extension 'x'\ng++: command not found")


@pytest.fixture
def no_build_yet(monkeypatch):
    """kernels as in a fresh process: nothing built or tried, no override, no environment."""
    for name, value in (("_module", None), ("_error", None), ("_warned", False), ("_forced", None)):
        monkeypatch.setattr(kernels, name, value)
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)


def _count_python_loop_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    for name in ("tanh_forward", "tanh_backward"):
        function = getattr(loops_python, name)
        monkeypatch.setattr(
            loops_python, name, lambda *a, _f=function, _n=name: calls.append(_n) or _f(*a)
        )
    return calls


def test_the_default_is_auto_and_the_schema_knows_the_choices(tmp_path: Path) -> None:
    assert tiny_config().trainer.backend == "auto"
    with pytest.raises(ConfigError, match=r"trainer.backend.*fortran.*one of auto, cpp, python"):
        run(tiny_config("trainer.backend=fortran"), tmp_path)
    assert not list(tmp_path.rglob("metrics.json"))


def test_python_setting_trains_on_the_python_loops_and_records_it(
    tmp_path: Path, monkeypatch
) -> None:
    calls = _count_python_loop_calls(monkeypatch)
    metrics = run(tiny_config("trainer.backend=python"), tmp_path)
    assert metrics["loops"] == "python" and metrics["recurrent_matmul"] == "torch"
    assert json.loads((tmp_path / "metrics.json").read_text())["loops"] == "python"
    assert {"tanh_forward", "tanh_backward"} <= set(calls)
    assert kernels.backend() == (os.environ.get(kernels.ENV_VAR) or "auto")  # setting undone


@pytest.mark.cpp
def test_cpp_setting_wins_over_the_environment(tmp_path: Path, monkeypatch, cpp_loops) -> None:
    monkeypatch.setenv(kernels.ENV_VAR, "python")
    calls = _count_python_loop_calls(monkeypatch)
    metrics = run(tiny_config("trainer.backend=cpp"), tmp_path)
    assert metrics["loops"] == "cpp" and calls == []


def test_auto_leaves_the_choice_to_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(kernels.ENV_VAR, "python")
    calls = _count_python_loop_calls(monkeypatch)
    assert run(tiny_config("trainer.backend=auto"), tmp_path)["loops"] == "python"
    assert calls


def test_the_backend_is_not_part_of_the_identity() -> None:
    base = identity_of(tiny_config())
    assert "backend" not in base["trainer"]
    for name in ("cpp", "python"):
        assert identity_of(tiny_config(f"trainer.backend={name}")) == base


def test_use_setting_errors_name_the_setting(no_build_yet, monkeypatch) -> None:
    monkeypatch.setattr(kernels, "_build", _failing_build)
    with pytest.raises(ConfigError, match=r"^trainer.backend='fortran': choose one of auto"):
        with kernels.use_setting("fortran"):
            pass
    with pytest.raises(ConfigError) as error:
        with kernels.use_setting("cpp"):
            pass
    message = str(error.value)
    assert "\n" not in message and message.startswith("trainer.backend=cpp but the C++ loops")
    assert "g++: command not found" in message and "trainer.backend=python" in message
    monkeypatch.setenv(kernels.ENV_VAR, "cpp")  # auto defers to the environment: named then
    with pytest.raises(ConfigError, match=r"^GRU_REPRO_KERNELS=cpp \(trainer.backend=auto\) but"):
        with kernels.use_setting("auto"):
            pass
    monkeypatch.delenv(kernels.ENV_VAR)
    with pytest.warns(RuntimeWarning, match="Python loops"):
        with kernels.use_setting("auto") as module:  # auto falls back
            assert module is loops_python


# The entry point with the extension's build made to fail, as on a machine without a compiler.
NO_COMPILER = """
import sys
from gru_repro.models import kernels

def fail(verbose=False):
    raise RuntimeError("Error building extension 'x'\\ng++: command not found")

kernels._build = fail
sys.argv = ["gru-repro-train", *sys.argv[1:]]
from gru_repro.train import main

main()
"""


def _entry_without_compiler(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop(kernels.ENV_VAR, None)
    return subprocess.run(
        [sys.executable, "-c", NO_COMPILER, f"paths.output_root={tmp_path}", *TINY, *overrides],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.subprocess
def test_cpp_without_a_compiler_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    result = _entry_without_compiler(tmp_path, "trainer.backend=cpp")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert errors[0].startswith("error: trainer.backend=cpp but the C++ loops cannot be built")
    assert "command not found" in errors[0] and "trainer.backend=python" in errors[0]
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("metrics.json"))

    fallback = _entry_without_compiler(tmp_path, "trainer.backend=auto")  # trains on Python
    assert fallback.returncode == 0, fallback.stderr
    (metrics,) = tmp_path.rglob("metrics.json")
    assert json.loads(metrics.read_text())["loops"] == "python"
