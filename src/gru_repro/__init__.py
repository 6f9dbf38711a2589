"""Reproduction of Chung, Gulcehre, Cho & Bengio (2014): tanh-RNN vs GRU vs LSTM."""

from pathlib import Path

__version__ = "0.1.0"

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The folder of the Hydra configs (``train.yaml`` and its groups): the one place that says
    where they are, for the entry points, the scripts and the tests.

    An installed wheel carries them inside the package (``gru_repro/configs``, mapped from the
    checkout's top-level ``configs/`` in pyproject.toml). A source checkout and its editable
    install use the checkout's ``configs/`` itself, so edits there apply at once (setuptools'
    editable finder cannot import a mapped folder without ``__init__.py``, so it is looked up
    here rather than imported).
    """
    for candidate in (_PACKAGE_DIR / "configs", _PACKAGE_DIR.parents[1] / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"no Hydra configs (train.yaml) in {_PACKAGE_DIR / 'configs'} or "
        f"{_PACKAGE_DIR.parents[1] / 'configs'}: reinstall the package (pip install .)"
    )
