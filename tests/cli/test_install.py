"""`pip install .` gives a working package: the wheel carries the Hydra configs and the C++
sources, and the console scripts train and sample from a folder outside the checkout.

The slow test builds the package from a copy of the checkout's packaging inputs into a fresh
virtual environment, without network: the new environment reads the dependencies from this
interpreter's site-packages through a .pth file, and pip installs only gru-repro itself
(``--no-deps --no-build-isolation``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from setuptools import find_packages

import gru_repro

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the build reads: pyproject.toml names README.md as the readme, src/ and configs/ as
# package folders. A build needing more fails this test.
PACKAGING_INPUTS = ("pyproject.toml", "README.md", "src", "configs")
SUBPROCESS_TIMEOUT_S = 300  # a hung step fails instead of blocking the suite


def _yaml_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.yaml")}


def test_the_checkout_reads_its_top_level_configs() -> None:
    """A source checkout (and its editable install) uses configs/ itself, where it is edited."""
    assert gru_repro.config_dir() == REPO_ROOT / "configs"


def _run(command: list[str | Path], **options) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        **options,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _fresh_environment(folder: Path) -> tuple[Path, Path]:
    """A new virtual environment in ``folder`` that imports this interpreter's packages (the
    dependencies) after its own; its python and its site-packages."""
    _run([sys.executable, "-m", "venv", "--without-pip", folder])
    python = folder / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    dependencies = "\n".join(site.getsitepackages()) + "\n"
    site_packages = Path(purelib.stdout.strip())
    (site_packages / "dependencies.pth").write_text(dependencies)
    return python, site_packages


def _copy_packaging_inputs(folder: Path) -> Path:
    folder.mkdir()
    for name in PACKAGING_INPUTS:
        if (REPO_ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO_ROOT / name, folder / name, ignore=ignore)
        else:
            shutil.copy2(REPO_ROOT / name, folder / name)
    return folder.resolve()


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.install
@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "editable"])
def test_installed_console_scripts_train_and_sample_outside_the_checkout(
    tmp_path: Path, data_mirror: Path, editable: bool
) -> None:
    """`pip install .` (the package copied into site-packages) and the Makefile's editable
    install (`-e .`, reading the source folder) both give console scripts that train and
    sample from any folder."""
    source = _copy_packaging_inputs(tmp_path / "source")
    env_dir = (tmp_path / "env").resolve()
    python, site_packages = _fresh_environment(env_dir)
    pip = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    editable_flags = ["--config-settings", "editable_mode=compat", "-e"]  # as the Makefile
    _run(
        [
            *pip,
            "--disable-pip-version-check",
            "--quiet",
            *(editable_flags if editable else []),
            source,
        ]
    )

    # the new environment's gru_repro is imported (not the checkout's), with configs and sources
    show = (
        "import gru_repro; from gru_repro.models import kernels; "
        "print(gru_repro.config_dir()); print(kernels.SOURCE); print(len(kernels.HEADERS))"
    )
    shown = _run([python, "-c", show]).stdout.split()
    config_dir, cpp_source, n_headers = Path(shown[0]), Path(shown[1]), int(shown[2])
    if editable:
        assert config_dir == source / "configs"
        assert cpp_source == source / "src" / "gru_repro" / "models" / "csrc" / "loops.cpp"
    else:
        assert config_dir == site_packages / "gru_repro" / "configs"
        assert cpp_source.is_relative_to(site_packages / "gru_repro")
        # pyproject.toml lists the packages by hand (the configs mapping needs it): all there
        installed = find_packages(site_packages, include=["gru_repro*"])
        assert installed == find_packages(REPO_ROOT / "src", include=["gru_repro*"])
        assert (site_packages / "hydra_plugins" / "gru_repro_sweeper" / "keep_going.py").is_file()
    assert _yaml_files(config_dir) == _yaml_files(REPO_ROOT / "configs")
    assert cpp_source.is_file() and n_headers >= 1

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "DATA_MIRROR": str(data_mirror), "GRU_REPRO_KERNELS": "python"}
    env.pop("GRU_REPRO_DATA_DIR", None)  # data/ goes below the launch folder
    train = [env_dir / "bin" / "gru-repro-train", "data=jsb", "trainer.max_epochs=1", "seed=3"]
    _run(train, cwd=elsewhere, env=env)

    (run_dir,) = (elsewhere / "outputs" / "jsb" / "gru" / "rmsprop" / "lr=0.001").glob("seed=3-*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["dataset"] == "jsb"
    assert metrics["epochs"] == 1
    coin_flip_nll = 88 * math.log(2)  # nats per frame for p = 0.5 on each of the 88 notes
    for split in ("train", "valid", "test"):
        assert 0 < metrics[f"{split}_nll"] < coin_flip_nll

    sample = [env_dir / "bin" / "gru-repro-sample", run_dir, "n=1", "length=16", "references=0"]
    _run(sample, cwd=elsewhere, env=env)
    assert (run_dir / "samples" / "sample_0.mid").stat().st_size > 0
