"""`make samples` on a fresh clone: committed runs (no checkpoints) get a way out that trains,
and a gallery sampled from some data sets' runs keeps the other data sets' index rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_sampling_gallery import fake_run, load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.artifacts
def test_committed_runs_without_checkpoints_point_to_a_command_that_trains(
    tmp_path, capsys
) -> None:
    committed = tmp_path / "results" / "runs" / "music" / "jsb" / "gru" / "lr=0.001" / "seed=1"
    committed.mkdir(parents=True)
    (committed / "metrics.json").write_text(json.dumps({"status": "completed", "valid_nll": 8.0}))
    out = tmp_path / "outputs" / "samples"
    assert load_script().main(["--runs", str(tmp_path / "results"), "--out", str(out)]) == 1
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    assert "1 run(s) there have no checkpoints/best.pt" in message
    assert "make reproduce-quick" in message and "outputs/quick/runs" in message
    assert not out.exists()


def test_resampling_some_data_sets_keeps_the_others_in_the_index(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    gallery = tmp_path / "samples"
    shutil.copytree(REPO / "results" / "samples", gallery)  # the committed gallery's index
    before = (gallery / "README.md").read_text().splitlines()
    others = [row for row in before if row.startswith("| ") and not row.startswith("| jsb |")]
    runs = tmp_path / "outputs"
    fake_run(runs / "a", "jsb", "gru", 8.1)
    assert load_script().main(["--runs", str(runs), "--out", str(gallery), "--n", "1"]) == 0
    after = (gallery / "README.md").read_text().splitlines()
    for row in others[1:]:  # every other data set's row (the header row aside) is still there
        assert row in after, row
    jsb = [row for row in after if row.startswith("| jsb |")]
    assert jsb == [next(row for row in jsb if "`outputs/a`" in row)]  # only the new jsb run
    datasets = [row.split("|")[1].strip() for row in after if row.startswith("| ")][1:]
    assert datasets == sorted(datasets)
