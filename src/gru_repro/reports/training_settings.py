"""How the runs of a Table 2 cell were trained, read from their metrics.json: the settings its
header states (batch, epoch budget, stopping, clipping, objective, update cap, weight noise,
checkpoint selection), never typed into a report.

A setting is read from metrics.json's own key, else from the run's identity (the settings that
make the run, `gru_repro.config.identity`). A key added after runs were committed is left out
of the identity of a run that holds its old behaviour (`ADDED_KEY_DEFAULTS`), so for a run with
an identity a missing added key *is* that old behaviour; a run without an identity (older than
identities) records nothing.
"""

from __future__ import annotations

from typing import Any

from gru_repro.config.identity import ADDED_KEY_DEFAULTS
from gru_repro.reports.collect import Run

NOT_RECORDED = None  # what every reader below returns where the run does not say


def _section(run: Run, group: str) -> dict | None:
    """The identity's ``group`` section (e.g. "trainer", "optim"); None without an identity."""
    identity = run.metrics.get("identity")
    section = identity.get(group) if isinstance(identity, dict) else None
    return section if isinstance(section, dict) else None


def records(run: Run, key: str) -> bool:
    """Whether the run says how trainer setting ``key`` was set (metrics.json or identity)."""
    return key in run.metrics or key in (_section(run, "trainer") or {})


def run_setting(run: Run, key: str, group: str = "trainer") -> Any:
    """A training setting of a run: metrics.json's own key, else the identity's ``group``
    section, else the old behaviour of an added key when the run has that section; None
    when none of them says."""
    if key in run.metrics:
        return run.metrics[key]
    section = _section(run, group)
    if section is None:
        return NOT_RECORDED
    if key in section:
        return section[key]
    return ADDED_KEY_DEFAULTS.get(f"{group}.{key}", NOT_RECORDED)


def _says(run: Run, key: str, group: str = "trainer") -> bool:
    """Whether ``run_setting`` has an answer: recorded, or an added key's old behaviour."""
    section = _section(run, group)
    return key in run.metrics or (
        section is not None and (key in section or f"{group}.{key}" in ADDED_KEY_DEFAULTS)
    )


def stopping(run: Run) -> str | None:
    """How the run's early stopping was set: "patience <n> evaluations" (of every <k> epochs
    when not every epoch), "none" where patience <= 0 or null (the best checkpoint of the
    whole budget), None where the run does not record it."""
    if not records(run, "patience"):
        return NOT_RECORDED
    patience = run_setting(run, "patience")
    if not isinstance(patience, (int, float)) or patience <= 0:
        return "none"
    every = run_setting(run, "eval_every")
    text = f"patience {int(patience)} evaluations"
    return text + (f" of every {every} epochs" if isinstance(every, int) and every > 1 else "")


def clipping(run: Run) -> str | None:
    """The run's gradient clipping: "global norm <c>", "none" where the norm is 0 or null,
    None where the run does not record it."""
    if not records(run, "clip_grad_norm"):
        return NOT_RECORDED
    norm = run_setting(run, "clip_grad_norm")
    return f"global norm {norm:g}" if isinstance(norm, (int, float)) and norm > 0 else "none"


# Where a run may record what its optimizer minimises (e.g. "sum", "mean"): a setting of the
# trainer, so in metrics.json or its identity's trainer section. Only a name counts, never a
# number (a final loss value under the same key).
OBJECTIVE_KEYS = ("objective", "loss")
OBJECTIVES = {  # trainer.objective -> what the header says
    "mean": "the per-step NLL averaged over the batch's predicted frames",
    "sum": "the NLL summed over the sequence's frames and notes",
}


def objective(run: Run) -> str | None:
    names = (run_setting(run, key) for key in OBJECTIVE_KEYS)
    name = next((name for name in names if isinstance(name, str) and name), NOT_RECORDED)
    if name in OBJECTIVES:
        return f"{name} ({OBJECTIVES[name]})"
    return name


def update_cap(run: Run) -> str | None:
    """The cap on each applied update's L2 norm (optim.max_update_norm): "norm <c>" or "none"."""
    if not _says(run, "max_update_norm", "optim"):
        return NOT_RECORDED
    cap = run_setting(run, "max_update_norm", "optim")
    return f"norm {cap:g}" if isinstance(cap, (int, float)) and cap > 0 else "none"


def weight_noise(run: Run) -> str | None:
    """The weight noise's std and how often it is drawn: "std 0.075, one draw per update"."""
    std = run.metrics.get("weight_noise", run_setting(run, "weight_noise"))
    if not isinstance(std, (int, float)):
        return NOT_RECORDED
    if std <= 0:
        return "none"
    per = run_setting(run, "weight_noise_per")
    return f"std {std:g}" + (f", one draw per {per}" if isinstance(per, str) else "")


def selection(run: Run) -> str | None:
    """Which validation NLL picks the kept checkpoint (trainer.select_on), and whether the
    other one was logged beside it (trainer.noisy_valid)."""
    if not _says(run, "select_on"):
        return NOT_RECORDED
    select_on = run_setting(run, "select_on")
    both = run_setting(run, "noisy_valid") is True or select_on == "noisy"
    logged = " (clean and noisy both logged)" if both else ""
    return f"{select_on} validation NLL{logged}"


SETTINGS = {  # Table2Row field -> reader
    "early_stopping": stopping,
    "grad_clip": clipping,
    "objective": objective,
    "update_cap": update_cap,
    "weight_noise": weight_noise,
    "selection": selection,
}


def budget_settings(runs: list[Run]) -> dict[str, str]:
    """The Table2Row budget columns from the runs' metrics.json: each setting's values,
    "; "-joined when the runs differ, "" when no run records it."""

    def joined(values) -> str:
        return "; ".join(dict.fromkeys(str(v) for v in values if v is not None))

    plain = {key: joined(run_setting(r, key) for r in runs) for key in ("batch_size", "max_epochs")}
    return plain | {name: joined(read(r) for r in runs) for name, read in SETTINGS.items()}
