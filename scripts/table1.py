"""Write results/table1.md: the paper's Table 1 (model sizes) beside the counts from our code.

Usage: python scripts/table1.py [--out results/table1.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from gru_repro.models.table1 import table1_markdown

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "table1.md")
    args = parser.parse_args(argv)
    write_atomic(args.out, table1_markdown())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
