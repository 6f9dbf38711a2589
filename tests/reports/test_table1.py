"""scripts/table1.py writes results/table1.md with the paper's and our numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gru_repro.reports.table1 import table1_rows

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_rows_match_paper() -> None:
    rows = {(r.task, r.input_size, r.unit): r for r in table1_rows()}
    assert rows["speech", 20, "tanh"].ours_at_paper_size == 168_400
    assert rows["speech", 20, "gru"].ours_at_paper_size == 168_888
    assert rows["speech", 20, "lstm"].ours_at_paper_size == 169_065
    for unit, hidden in (("tanh", 100), ("gru", 46), ("lstm", 36)):
        assert (
            rows["music", 100, unit].solved_hidden
            == hidden
            == rows["music", 100, unit].paper_hidden
        )
    assert [rows["music", 88, u].solved_hidden for u in ("tanh", "gru", "lstm")] == [104, 49, 39]


@pytest.mark.subprocess
def test_script_writes_table(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "table1.md"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "table1.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    assert "| speech | 20 | LSTM | 195 | ≈ 169.1k | 169,065 |" in text
    assert "| music | 88 | tanh | 100 | ≈ 20.1k | 18,900 | 20,100 | 104 | 20,072 |" in text
    assert "at code commit `" in text  # provenance footer
    assert not list(out.parent.glob(".*"))  # the temporary file was renamed away
