"""Rebuild the reports (Table 2, Figure 3, LR search, README) from finished run folders.

    python scripts/make_reports.py                                  # outputs/runs -> outputs/
    python scripts/make_reports.py --runs outputs/quick/runs        # -> outputs/quick/
    python scripts/make_reports.py --runs results/runs              # make reports: the committed
    python scripts/make_reports.py --allow-incomplete               # partial sweep, marked so
    python scripts/make_reports.py --runs R --only speech/a         # one experiment of R's protocol

The reports go to --out, by default the folder holding --runs (`<root>/runs` -> `<root>/`).

The expected grid, with every run's folder, comes from <runs>/protocols/<name>.json (written by
scripts/reproduce.py): --protocol NAME picks one when the runs root holds several (the
full protocol and its released variants share results/runs), or --report-set NAME the
protocol a published folder shows (gru_repro.reports.report_sets: `make reports` builds
`full` into results/ and `released` into results/released/, the newest protocol of the set
that has finished runs; a set with none is left as it is, exit 0). Exits 1 and names the
missing runs when the sweep is incomplete, unless --allow-incomplete.

The report files are built in a staging folder and swapped in as one set, so a build killed at
any moment leaves the complete old set or the complete new one; the next build finishes a swap
that a kill interrupted and deletes what killed builds left (gru_repro.reports.publish).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import IncompleteSweepError
from gru_repro.reports.protocol import REPORT_SETS, Protocol
from gru_repro.reports.readme_section import project_readme_for
from gru_repro.reports.report_sets import choose_protocol

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("outputs/runs"), help="runs root")
    parser.add_argument(
        "--out", type=Path, help="report folder (default: the folder holding --runs)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--protocol",
        default=None,
        help="name of a protocol in <runs>/protocols/ (default: the only one there)",
    )
    which.add_argument(
        "--report-set",
        choices=tuple(REPORT_SETS),
        help="the published report set to build: its newest protocol with finished runs",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="EXPERIMENT",
        help="report only this experiment of the protocol, e.g. speech/a (repeatable): for a "
        "runs root that trains only some of them",
    )
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="build from whatever finished; the reports say they are partial",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out = args.out or args.runs.parent

    try:
        if args.report_set:
            protocol, passed_over = choose_protocol(args.runs, args.report_set)
            for reason in passed_over:
                print(f"{args.out}: report set `{args.report_set}`: passed over {reason}")
            if protocol is None:
                print(
                    f"{args.out}: no protocol of report set `{args.report_set}` has finished "
                    f"runs under {args.runs}; nothing written, the folder is left as it is"
                )
                return 0
        else:
            protocol = Protocol.load(args.runs, args.protocol)
        if args.only:
            protocol = protocol.only(args.only)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        written = build_reports(
            args.runs,
            args.out,
            protocol,
            allow_incomplete=args.allow_incomplete,
            project_readme=project_readme_for(args.out, REPO_ROOT),
        )
    except IncompleteSweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
