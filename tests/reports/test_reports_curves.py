"""curves.csv cut short: the torn last row is dropped with a warning, never plotted."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from fake_runs import write_fake_run

from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import collect, read_curves, read_run
from gru_repro.reports.figure3 import representative_run
from gru_repro.reports.protocol import ExperimentPlan, Protocol

HEADER = "epoch,updates,wall_seconds,train_nll,valid_nll\n"
ROWS = ["0,0,0.0,60.5,60.2\n", "1,10,1.5,9.25,9.5\n", "2,20,3.0,8.125,8.75\n"]
LAST = "3,30,4.5,7.0625,7.875\n"


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_complete_file_reads_every_row_without_a_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "curves.csv"
    path.write_text(HEADER + "".join(ROWS) + LAST)
    rows = read_curves(path)
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    assert rows[-1]["valid_nll"] == 7.875
    assert _warnings(caplog) == []


@pytest.mark.parametrize("cut", range(1, len(LAST)))  # every byte the last line can lose
def test_file_cut_inside_its_last_row_drops_that_row_with_a_warning(
    tmp_path: Path, caplog, cut: int
) -> None:
    path = tmp_path / "curves.csv"
    path.write_text(HEADER + "".join(ROWS) + LAST[:-cut])
    rows = read_curves(path)
    assert [row["epoch"] for row in rows] == [0, 1, 2]  # the torn row 3 is never returned
    assert rows[-1] == {
        "epoch": 2,
        "updates": 20,
        "wall_seconds": 3.0,
        "train_nll": 8.125,
        "valid_nll": 8.75,
    }
    (message,) = _warnings(caplog)
    assert str(path) in message and "dropped its last row, line 5" in message


@pytest.mark.parametrize(
    ("last", "why"),
    [
        ("3,30,4.5\n", "3 cells where the header has 5"),  # lost cells, newline kept
        ("3,30,4.5,7.0,7.8,9\n", "6 cells where the header has 5"),
        ("3,30,4.5,7.0e,7.8\n", "train_nll '7.0e' is not a number"),
        ("3,30,4.5,7.0,\x00\x00\n", "is not a number"),  # zero-filled tail after a crash
    ],
)
def test_malformed_last_row_is_dropped_naming_the_file(
    tmp_path: Path, caplog, last: str, why: str
) -> None:
    path = tmp_path / "curves.csv"
    path.write_text(HEADER + "".join(ROWS) + last)
    assert len(read_curves(path)) == len(ROWS)
    (message,) = _warnings(caplog)
    assert str(path) in message and why in message


def test_empty_valid_cell_of_a_complete_last_row_is_kept(tmp_path: Path, caplog) -> None:
    path = tmp_path / "curves.csv"
    path.write_text(HEADER + "".join(ROWS) + "3,30,4.5,7.0625,\n")  # eval_every > 1
    rows = read_curves(path)
    assert len(rows) == 4 and math.isnan(rows[-1]["valid_nll"])
    assert _warnings(caplog) == []


def test_bad_row_before_the_last_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "curves.csv"
    path.write_text(HEADER + ROWS[0] + "1,10,1.5\n" + ROWS[2] + LAST)
    with pytest.raises(ValueError, match=r"curves\.csv: line 3: 3 cells where the header has 5"):
        read_curves(path)


@pytest.mark.parametrize("text", ["", "epoch,upd", HEADER[:-1]])
def test_file_cut_inside_its_header_has_no_curves(tmp_path: Path, caplog, text: str) -> None:
    path = tmp_path / "curves.csv"
    path.write_text(text)
    assert read_curves(path) == []
    (message,) = _warnings(caplog)
    assert str(path) in message and "cut short" in message


def test_reports_build_from_a_run_with_a_torn_curves_file(tmp_path: Path, caplog) -> None:
    plan = ExperimentPlan("music/jsb", units=("gru",), lrs=(1e-3,), seeds=(1,))
    protocol = Protocol("test", (plan,))
    folder = write_fake_run(tmp_path / "runs", "music/jsb", "gru", 1e-3, 1, valid_nll=3.0)
    curves = folder / "curves.csv"
    full = curves.read_text()
    curves.write_text(full[: full.rindex(",") + 2])  # the last valid_nll cut to its first digit
    assert [row["epoch"] for row in read_run(folder).curves] == [1, 2, 3]  # epoch 4 was torn
    (exp,) = collect(tmp_path / "runs", protocol).experiments
    plotted = representative_run(exp, "gru")  # the run Figure 3 draws, without the torn row
    assert [row["epoch"] for row in plotted.curves] == [1, 2, 3]
    caplog.clear()
    build_reports(tmp_path / "runs", tmp_path / "out", protocol)
    assert any(str(curves) in m and "dropped its last row" in m for m in _warnings(caplog))
    assert (tmp_path / "out" / "figure3_more.png").read_bytes()[:4] == b"\x89PNG"
