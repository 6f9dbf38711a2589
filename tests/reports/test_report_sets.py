"""Report sets: results/released/ shows the released code's exact training once all its runs
have finished, the released optimizer's protocol until then, and nothing is written while no
protocol of the set has runs (gru_repro.reports.report_sets, scripts/make_reports.py
--report-set)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from fake_runs import fake_valid_nll, write_fake_run

from gru_repro.reports.protocol import ExperimentPlan, Protocol
from gru_repro.reports.report_sets import choose_protocol, report_set_protocols

REPO = Path(__file__).resolve().parents[2]
LRS = (1e-4, 1e-3)


def _make_reports():
    path = REPO / "scripts" / "make_reports.py"
    spec = importlib.util.spec_from_file_location("make_reports", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


# the two protocols of report set "released", as small as a test can make them; the new one's
# runs have a folder group of their own and report as the paper's JSB
OLD = Protocol(
    "full-released-optim", (ExperimentPlan("music/jsb", units=("gru",), lrs=LRS, seeds=(1,)),)
)
NEW = Protocol(
    "released-exact",
    (ExperimentPlan("released/jsb", units=("gru",), lrs=LRS, seeds=(1,), reports_as="music/jsb"),),
)


def _run(root: Path, protocol: Protocol, lrs=LRS, status: str = "completed") -> None:
    protocol.save(root)
    plan = protocol.experiments[0]
    for lr in lrs:
        valid = fake_valid_nll("gru", lr, 1e-3)
        write_fake_run(root, plan.experiment, "gru", lr, 1, valid_nll=valid, status=status)


def test_the_exact_protocol_is_preferred_in_results_released() -> None:
    assert report_set_protocols("released") == ["released-exact", "full-released-optim"]
    assert report_set_protocols("full") == ["full"]
    with pytest.raises(ValueError, match="report set 'nope': choose one of full, released"):
        report_set_protocols("nope")


def test_the_folder_switches_only_once_the_new_protocol_has_finished_all_runs(tmp_path) -> None:
    assert choose_protocol(tmp_path, "released") == (
        None,
        [
            "`released-exact`: no runs yet (no protocols/released-exact.json)",
            "`full-released-optim`: no runs yet (no protocols/full-released-optim.json)",
        ],
    )
    _run(tmp_path, OLD)
    protocol, passed_over = choose_protocol(tmp_path, "released")
    assert protocol.name == "full-released-optim"
    assert passed_over == ["`released-exact`: no runs yet (no protocols/released-exact.json)"]

    _run(tmp_path, NEW, lrs=(), status="running")  # planned (its protocol file), none run
    write_fake_run(tmp_path, "released/jsb", "gru", 1e-4, 1, valid_nll=3.0, status="running")
    protocol, passed_over = choose_protocol(tmp_path, "released")
    assert protocol.name == "full-released-optim"
    assert passed_over == ["`released-exact`: no finished runs yet"]

    write_fake_run(tmp_path, "released/jsb", "gru", 1e-3, 1, valid_nll=3.0, status="completed")
    protocol, passed_over = choose_protocol(tmp_path, "released")  # half of it: committed
    assert protocol.name == "full-released-optim"  # piece by piece, the folder stays whole
    assert passed_over == [
        "`released-exact`: 1 planned run(s) not finished yet; it replaces the next protocol "
        "once all have (--protocol released-exact --allow-incomplete builds it as it is)"
    ]

    write_fake_run(tmp_path, "released/jsb", "gru", 1e-4, 1, valid_nll=3.0, status="completed")
    protocol, passed_over = choose_protocol(tmp_path, "released")
    assert protocol.name == "released-exact" and passed_over == []


def test_a_sets_last_protocol_is_built_from_its_first_finished_runs(tmp_path) -> None:
    """The fallback of a set has nothing to keep in place: partial runs are published, marked
    incomplete by make_reports (--allow-incomplete)."""
    _run(tmp_path, OLD, lrs=LRS[:1])
    protocol, passed_over = choose_protocol(tmp_path, "released")
    assert protocol.name == "full-released-optim" and len(passed_over) == 1


def test_no_runs_yet_writes_nothing_and_exits_0(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results" / "released"
    code = _make_reports()(
        ["--runs", str(tmp_path / "runs"), "--report-set", "released", "--out", str(out)]
    )
    assert code == 0
    assert "no protocol of report set `released` has finished runs" in capsys.readouterr().out
    assert not out.exists()  # no folder, not even an empty one


@pytest.mark.slow
def test_the_new_protocol_drives_table2_lr_search_and_figure3(tmp_path: Path, capsys) -> None:
    runs, out = tmp_path / "runs", tmp_path / "results" / "released"
    main = _make_reports()
    args = ["--runs", str(runs), "--report-set", "released", "--out", str(out)]
    _run(runs, OLD)
    assert main(args) == 0
    assert (
        "Protocol `full-released-optim`: the paper's protocol with the released"
        in (out / "table2.md").read_text()
    )

    _run(runs, NEW, lrs=LRS[:1])  # one of its two candidates finished: incomplete
    assert main(args) == 0  # the old set stays, and the output says why
    assert "full-released-optim" in (out / "table2.md").read_text()
    assert "`released-exact`: 1 planned run(s) not finished yet" in capsys.readouterr().out

    _run(runs, NEW)
    assert main(args) == 0
    table = (out / "table2.md").read_text()
    assert "Protocol `released-exact`: the released code's training, exactly." in table
    assert "| JSB Chorales | GRU | 6.94 |" in table  # reports as the paper's JSB
    assert "Protocol `released-exact`" in (out / "lr_search.md").read_text()
    assert "`experiment=released/jsb`" in (out / "lr_search.md").read_text()
    assert (out / "figure3_more.png").read_bytes()[:4] == b"\x89PNG"  # JSB's panel
    assert "protocol: `released-exact`" in (out / "README.md").read_text()
