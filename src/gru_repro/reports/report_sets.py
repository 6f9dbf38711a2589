"""Which protocol a published report folder shows: the data behind `make reports`.

A report set (REPORT_SETS: "full" -> results/, "released" -> results/released/) is published
by the protocols of gru_repro.reports.protocol.OPTIMIZERS whose `report_set` names it. An entry
that `replaces` another is preferred once every run it plans has finished (its search and the
selected rates' seeds); until then the one it replaces stays in the folder, so its runs can be
committed piece by piece as they land (a sweep of days) while the published folder keeps a
whole protocol, never half one and half another. The last protocol of a set is built as soon
as it has finished runs. A set none of whose protocols has finished runs is not built
(`choose_protocol` says why), and nothing is written.

    protocol, why_not = choose_protocol(runs_root, "released")
"""

from __future__ import annotations

from pathlib import Path

from gru_repro.reports.collect import collect, read_run
from gru_repro.reports.protocol import (
    OPTIMIZERS,
    PROTOCOLS_DIR,
    REPORT_SETS,
    Protocol,
    protocol_path,
)


def report_set_protocols(report_set: str, variants=None) -> list[str]:
    """The protocol names that publish into `report_set`, preferred first: an entry that
    replaces another comes before the one it replaces."""
    variants = list((variants or OPTIMIZERS).values())
    if report_set not in REPORT_SETS:
        raise ValueError(f"report set {report_set!r}: choose one of {', '.join(REPORT_SETS)}")
    mine = [v for v in variants if v.report_set == report_set]
    order: list[str] = []

    def place(variant) -> None:  # a replacing entry is placed before what it replaces
        if variant.protocol_name in order:
            return
        for other in mine:
            if other.replaces == variant.protocol_name:
                place(other)
        order.append(variant.protocol_name)

    for variant in mine:
        place(variant)
    return order


def finished_search_runs(runs_root: Path, protocol: Protocol) -> int:
    """How many of the protocol's search runs have a final status in their metrics.json."""
    count = 0
    for plan in protocol.experiments:
        for unit, lr, seed in plan.search_runs():
            run = read_run(plan.run_dir(runs_root, unit, lr, seed))
            count += run is not None and run.finished
    return count


def choose_protocol(
    runs_root: str | Path, report_set: str, variants=None
) -> tuple[Protocol | None, list[str]]:
    """The preferred protocol of `report_set` under `runs_root` (complete, or for the set's last
    protocol with finished runs), and why each protocol preferred to it was passed over (None:
    no protocol of the set has runs)."""
    runs_root = Path(runs_root)
    passed_over = []
    names = report_set_protocols(report_set, variants)
    for name in names:
        if not protocol_path(runs_root, name).is_file():
            passed_over.append(f"`{name}`: no runs yet (no {PROTOCOLS_DIR}/{name}.json)")
            continue
        protocol = Protocol.load(runs_root, name)
        if finished_search_runs(runs_root, protocol) == 0:
            passed_over.append(f"`{name}`: no finished runs yet")
            continue
        missing = collect(runs_root, protocol).missing if name != names[-1] else []
        if missing:
            passed_over.append(
                f"`{name}`: {len(missing)} planned run(s) not finished yet; it replaces the "
                f"next protocol once all have (--protocol {name} --allow-incomplete builds it "
                "as it is)"
            )
            continue
        return protocol, passed_over
    return None, passed_over
