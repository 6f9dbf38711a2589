"""Range and choice checks declared next to each schema field, run when a config becomes its
dataclass (``OmegaConf.to_object`` calls ``__post_init__``).

OmegaConf checks types (``trainer.max_epochs=abc`` fails at composition); it has no ranges or
allowed values for plain fields, so a field states them in its metadata::

    batch_size: int = field(default=8, metadata=at_least(1))
    head: str = field(default="bernoulli", metadata=one_of("bernoulli", "gmm"))
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A config value that cannot work: one line naming the key, the value and what is valid."""


def at_least(low: float, note: str = "") -> dict:
    return {"check": lambda v: v >= low, "valid": f">= {low:g}" + (f" ({note})" if note else "")}


def above(low: float, note: str = "") -> dict:
    return {"check": lambda v: v > low, "valid": f"> {low:g}" + (f" ({note})" if note else "")}


def one_of(*choices: Any) -> dict:
    return {"check": lambda v: v in choices, "valid": "one of " + ", ".join(map(str, choices))}


class Checked:
    """Mixin: ``__post_init__`` applies every field's ``check``; ``group`` names the keys."""

    group: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            rule, value = f.metadata.get("check"), getattr(self, f.name)
            if rule is not None and value is not None and not rule(value):
                key = f"{self.group}.{f.name}" if self.group else f.name
                raise ConfigError(f"{key}={value!r} must be {f.metadata['valid']}")
