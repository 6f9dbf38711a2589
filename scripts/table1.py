"""Write Table 1: the paper's model sizes beside the counts from our code.

Usage: python scripts/table1.py [--out outputs/table1.md]   # make table1
       python scripts/table1.py --out results/table1.md     # make publish-table1 (committed)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gru_repro.atomic import atomic_write_text
from gru_repro.provenance import git_commit
from gru_repro.reports.table1 import table1_markdown

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "outputs" / "table1.md")
    args = parser.parse_args(argv)
    footer = f"\nCounted by `scripts/table1.py` at code commit `{git_commit()}`.\n"
    atomic_write_text(args.out, table1_markdown().rstrip("\n") + "\n" + footer)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
