"""results/lr_search.md: every candidate's validation NLL and status, to check the selection."""

from __future__ import annotations

import math

from gru_repro.reports.collect import (
    GRID_EDGE_NOTE,
    STILL_IMPROVING_NOTE,
    STILL_IMPROVING_RULE,
    Run,
    SweepResults,
)
from gru_repro.reports.table2 import UNIT_LABELS


def _cell(run: Run | None, selected: bool) -> str:
    if run is None:
        return "missing"
    if run.status == "diverged":
        epoch = run.metrics.get("diverged_epoch", run.metrics.get("epochs"))
        return f"diverged (epoch {epoch})" if epoch is not None else "diverged"
    if not run.finished:
        return f"{run.status} (unfinished)"
    valid = run.get("valid_nll")
    text = f"{valid:.3f}" if math.isfinite(valid) else "nan"
    if run.status == "early_stopped":
        text += " (es)"
    elif run.still_improving:
        text += " (still improving)"
    return f"**{text}** ←" if selected else text


def lr_search_markdown(results: SweepResults) -> str:
    lines = [
        "# Learning-rate search",
        "",
        f"Protocol `{results.protocol.name}`: each candidate trained once (seed 1); the cell is "
        "the validation NLL (nats per step) at the best checkpoint. **Bold ←** marks the "
        "candidate selected (lowest validation NLL among runs that did not diverge). "
        "(es) = early stopped; otherwise the epoch budget ran out (`completed`). "
        f"(still improving) = {STILL_IMPROVING_NOTE}: {STILL_IMPROVING_RULE}. "
        f"A note under a table marks a {GRID_EDGE_NOTE} (its largest or smallest candidate): "
        "the best rate may lie outside the grid.",
        "",
    ]
    for exp in results.experiments:
        units = list(exp.units)
        lines += [
            f"## {exp.plan.label} (`experiment={exp.plan.config}`)",
            "",
            "| lr | " + " | ".join(UNIT_LABELS.get(u, u) for u in units) + " |",
            "|---|" + "---|" * len(units),
        ]
        for lr in sorted(exp.plan.lrs):
            cells = [
                _cell(exp.units[u].candidates.get(lr), exp.units[u].selected_lr == lr)
                for u in units
            ]
            lines.append(f"| {lr:.3g} | " + " | ".join(cells) + " |")
        lines.append("")
        edges = [
            f"- {UNIT_LABELS.get(u, u)}: {GRID_EDGE_NOTE} ({r.grid_edge} candidate, "
            f"lr {r.selected_lr:.3g})"
            for u, r in exp.units.items()
            if r.grid_edge
        ]
        if edges:
            lines += [*edges, ""]
    return "\n".join(lines)
