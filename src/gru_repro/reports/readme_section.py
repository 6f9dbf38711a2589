"""Copy the reports into the README's results section, so README numbers come from runs too.

The README holds a block between two markers named after the reports folder, relative to the
README: `<!-- results:begin -->` ... `<!-- results:end -->` for results/ (the paper's protocol),
`<!-- results/released:begin -->` ... for results/released/ (the released code's training).
`update_readme_results` replaces a folder's block with its Table 2 (read from the freshly
written `table2.md`) and Figure 3 images. Nothing outside the markers changes, the README is
rewritten atomically, and a folder without markers (results/quick/) leaves it alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from gru_repro.atomic import atomic_write_text

BEGIN = "<!-- results:begin -->"  # the block of results/
END = "<!-- results:end -->"


def _relative(results_dir: Path, readme_dir: Path) -> str:
    """`results_dir` as the README links it, e.g. "results/released"."""
    return Path(os.path.relpath(results_dir, readme_dir)).as_posix()


def markers(results_dir: Path, readme_dir: Path) -> tuple[str, str]:
    """The begin and end markers of `results_dir`'s block in the README of `readme_dir`."""
    name = _relative(results_dir, readme_dir)
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def results_block(results_dir: Path, readme_dir: Path) -> str:
    """Markdown for the README: Table 2 body and figures, paths relative to the README."""
    rel = _relative(results_dir, readme_dir)
    table = (results_dir / "table2.md").read_text().splitlines()
    if table and table[0].startswith("# "):  # the README has its own heading
        table = table[1:]
    lines = [
        "<!-- written by scripts/make_reports.py from the runs; do not edit by hand -->",
        *table,
        "",
    ]
    for name, caption in (
        # the figures show only the data sets the protocol ran, and caption themselves
        ("figure3.png", "Figure 3: learning curves of the selected runs"),
        ("figure3_more.png", "Figure 3, continued: learning curves of the selected runs"),
    ):
        if (results_dir / name).is_file():
            lines += [f"![{caption}]({rel}/{name})", ""]
    lines.append(
        f"Learning-rate search: [{rel}/lr_search.md]({rel}/lr_search.md); provenance: "
        f"[{rel}/README.md]({rel}/README.md)."
    )
    return "\n".join(lines).strip("\n")


def update_readme_results(readme: Path, results_dir: Path) -> bool:
    """Replace the README's results block; False (README untouched) when it has no markers."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    begin, end_marker = markers(results_dir, readme.parent)
    start, end = text.find(begin), text.find(end_marker)
    if start < 0 or end < start:
        return False
    block = results_block(results_dir, readme.parent)
    new = text[: start + len(begin)] + "\n" + block + "\n" + text[end:]
    if new != text:
        atomic_write_text(readme, new)
    return True


def project_readme_for(out_dir: Path, repo_root: Path) -> Path | None:
    """The project README, for reports written inside the repository's results/ folder: it
    shows the blocks it has markers for (results/ and results/released/, not results/quick/)."""
    results = (repo_root / "results").resolve()
    if Path(out_dir).resolve().is_relative_to(results):
        return repo_root / "README.md"
    return None
