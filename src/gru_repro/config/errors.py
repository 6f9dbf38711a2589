"""Config errors of every origin (ours, Hydra's, OmegaConf's, the data loaders') as one line
that names the key, the bad value and what is valid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from gru_repro.config.checks import ConfigError
from gru_repro.data.errors import DataError

CONFIG_ERROR_EXIT = 2  # the exit code of every config error (one line on stderr)

# What a user can fix in the config or on the command line (a bug is none of these).
CONFIG_ERRORS = (
    ConfigError,
    DataError,
    FileNotFoundError,
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
    OmegaConfBaseException,
)


class SweepFailed(RuntimeError):
    """Some jobs of a multirun failed; the others ran. Lists them (one line each)."""

    def __init__(self, summary: Path, failed: list[dict], total: int) -> None:
        lines = [f"{len(failed)} of {total} sweep job(s) failed (summary: {summary}):"]
        lines += [f"  {' '.join(o['overrides'])}: {o['status']}: {o['error']}" for o in failed]
        super().__init__("\n".join(lines))


def _valid_keys(object_type: object) -> str:
    if dataclasses.is_dataclass(object_type):
        return ", ".join(f.name for f in dataclasses.fields(object_type))
    return ""


def _omegaconf_line(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None) or ""
    message = str(getattr(exc, "msg", None) or exc).splitlines()[0]
    if isinstance(exc, MissingMandatoryValue):
        return f"{key} is required: set it on the command line ({key}=...)"
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)):
        valid = _valid_keys(getattr(exc, "object_type", None))
        return f"unknown key {key}" + (f"; valid keys: {valid}" if valid else f" ({message})")
    if isinstance(exc, ValidationError):
        return f"{key}: {message}" if key else message
    return f"{key}: {message}" if key else message


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost OmegaConf error that names a key (an interpolation of the run folder's
    name fails on the key it reads, e.g. a required data.path)."""
    found, seen = exc, set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OmegaConfBaseException) and getattr(exc, "full_key", None):
            found = exc
        exc = exc.__cause__ or exc.__context__
    return found


def one_line(exc: BaseException) -> str:
    """The message a user sees for a config error (no traceback, no blank lines)."""
    exc = _root_cause(exc)
    if isinstance(exc, MissingConfigException) and exc.options:
        missing = (exc.missing_cfg_file or "").strip("/")
        group, _, option = missing.rpartition("/")
        if group:  # `_name.yaml` files are parts the options include (model/_base.yaml)
            choices = ", ".join(o for o in exc.options if not o.startswith("_"))
            return f"{group}={option}: no such option; valid choices: {choices}"
    if isinstance(exc, ConfigCompositionException) and isinstance(
        exc.__cause__, OmegaConfBaseException
    ):
        return _omegaconf_line(exc.__cause__)
    if isinstance(exc, OmegaConfBaseException):
        return _omegaconf_line(exc)
    return " ".join(str(exc).split())
