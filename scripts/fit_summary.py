"""Write results/fit.md: how far each music protocol fits the training set, beside the paper
(gru_repro.reports.fit), from the committed runs.

    python scripts/fit_summary.py                      # make reports writes it too
    python scripts/fit_summary.py --runs outputs/runs --out outputs/fit.md

Every protocol in PROTOCOLS whose <runs>/protocols/<name>.json exists gets a table; a protocol
whose sweep is under way shows what has finished and says how many runs are missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.reports.collect import collect
from gru_repro.reports.fit import fit_markdown, fit_rows
from gru_repro.reports.protocol import Protocol, protocol_path

PROTOCOLS = ("full", "full-released-optim", "released-exact")  # the music protocols, in order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("results/runs"))
    parser.add_argument("--out", type=Path, default=Path("results/fit.md"))
    args = parser.parse_args()
    sections = []
    for name in PROTOCOLS:
        if protocol_path(args.runs, name).is_file():
            results = collect(args.runs, Protocol.load(args.runs, name))
            sections.append((results, fit_rows(results)))
    atomic_write_text(args.out, fit_markdown(sections))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
