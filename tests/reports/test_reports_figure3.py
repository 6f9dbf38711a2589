"""Figure 3 shows only the protocol's data sets, readable ticks, one legend, a true caption."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from fake_runs import fake_valid_nll, write_fake_run

from gru_repro.reports.build import build_reports
from gru_repro.reports.collect import collect
from gru_repro.reports.figure3 import (
    FIGURE3_MAIN,
    FIGURE3_MORE,
    build_figure3,
    log_axis_locator,
)
from gru_repro.reports.protocol import ExperimentPlan, Protocol, run_dir

LRS = (3e-4, 1e-3)
BEST = {"tanh": 3e-4, "gru": 1e-3, "lstm": 1e-3}


def _sweep(root: Path, *experiments: str, weight_noise: float | None = 0.075) -> Protocol:
    """Seed-1 runs of every candidate and seed 2 of the best, as the quick protocol has."""
    plans = tuple(ExperimentPlan(e, lrs=LRS, seeds=(1, 2)) for e in experiments)
    for plan in plans:
        for unit in plan.units:
            for lr in plan.lrs:
                valid = fake_valid_nll(unit, lr, BEST[unit])
                folder = write_fake_run(root, plan.experiment, unit, lr, 1, valid_nll=valid)
                if weight_noise is not None:
                    metrics = json.loads((folder / "metrics.json").read_text())
                    (folder / "metrics.json").write_text(
                        json.dumps({**metrics, "weight_noise": weight_noise})
                    )
            write_fake_run(root, plan.experiment, unit, BEST[unit], 2, valid_nll=3.0)
    return Protocol("test", plans, "fake sweep")


def _figure(root: Path, protocol: Protocol, columns: tuple[str, ...]):
    return build_figure3(collect(root, protocol).experiments, columns)


def test_quick_protocol_figures_have_only_its_panels(tmp_path: Path) -> None:
    protocol = _sweep(tmp_path, "music/jsb", "music/nottingham", "speech/a")  # the quick set
    main = _figure(tmp_path, protocol, FIGURE3_MAIN)
    more = _figure(tmp_path, protocol, FIGURE3_MORE)
    try:
        assert len(main.axes) == 4  # Nottingham and speech A, two rows each
        titles = [ax.get_title().split("\n")[0] for ax in main.axes if ax.get_title()]
        assert titles == ["Nottingham", "Speech A"]
        assert len(more.axes) == 2
        assert more.axes[0].get_title().startswith("JSB Chorales")
        for fig in (main, more):
            texts = [t.get_text() for ax in fig.axes for t in ax.texts]
            assert not any("not in this protocol" in t for t in texts)
            assert all(ax.get_legend() is None for ax in fig.axes)  # nothing covers the curves
            assert len(fig.legends) == 1
            assert all(len(ax.get_lines()) == 6 for ax in fig.axes)  # 3 units x train, valid
    finally:
        plt.close(main)
        plt.close(more)


def test_a_figure_without_any_of_its_data_sets_is_not_written(tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "out"
    protocol = _sweep(runs, "music/nottingham", "speech/a")  # nothing of figure3_more
    out.mkdir()
    (out / "figure3_more.png").write_bytes(b"stale")  # from an earlier protocol
    written = {p.name for p in build_reports(runs, out, protocol)}
    assert "figure3.png" in written and "figure3_more.png" not in written
    assert not (out / "figure3_more.png").exists()
    assert "figure3_more.png" not in (out / "README.md").read_text()


@pytest.mark.parametrize(
    ("low", "high"),
    [(3.5, 16.0), (7.5, 25.0), (8.0, 30.0), (6.5, 60.0), (4.3, 9.0), (3.6, 5.7), (1.0, 300.0)],
)
def test_log_ticks_label_both_sides_of_ten_and_stay_few(low: float, high: float) -> None:
    fig, ax = plt.subplots()
    try:
        ax.set_yscale("log")
        ax.set_ylim(low, high)
        ax.yaxis.set_major_locator(log_axis_locator(low, high))
        ticks = [t for t in ax.get_yticks() if low <= t <= high]
        assert 3 <= len(ticks) <= 8
        if high > 12:
            assert any(t > 10 for t in ticks) and any(t < 10 for t in ticks)
    finally:
        plt.close(fig)


def test_music_axes_are_log_with_plain_labels_and_speech_linear(tmp_path: Path) -> None:
    protocol = _sweep(tmp_path, "music/nottingham", "speech/a")
    fig = _figure(tmp_path, protocol, FIGURE3_MAIN)
    try:
        fig.canvas.draw()
        music, speech = fig.axes[0], fig.axes[1]  # row 0: Nottingham, speech A
        assert music.get_yscale() == "log" and speech.get_yscale() == "log"  # fake NLLs > 0
        low, high = music.get_ylim()
        labels = [
            t.get_text()
            for t in music.get_yticklabels()
            if t.get_text() and low <= t.get_position()[1] <= high
        ]
        assert len(labels) >= 3 and all(math.isfinite(float(s)) for s in labels)  # "5", not 5e0
        assert "nats" in music.get_ylabel() and "time step" in music.get_ylabel()
        assert "per frame" in speech.get_ylabel()
        assert not any("≤" in ax.get_title() for ax in fig.axes)
    finally:
        plt.close(fig)


def _caption(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts).replace("\n", " ")


def test_caption_says_what_solid_and_dashed_are_from_the_runs(tmp_path: Path) -> None:
    protocol = _sweep(tmp_path, "music/jsb")
    fig = _figure(tmp_path, protocol, FIGURE3_MORE)
    try:
        text = _caption(fig)
        assert "Solid: validation NLL" in text and "Dashed: training NLL" in text
        assert "running mean over each epoch's updates" in text and "std 0.075" in text
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "training NLL (under weight noise)" in legend and "validation NLL" in legend
    finally:
        plt.close(fig)

    # A run trained with trainer.eval_train=true measured a clean pass: the caption says so.
    for unit in ("tanh", "gru", "lstm"):
        hydra_dir = run_dir(tmp_path, "music/jsb", unit, BEST[unit], 1) / ".hydra"
        hydra_dir.mkdir()
        (hydra_dir / "config.yaml").write_text("trainer:\n  eval_train: true\n")
    fig = _figure(tmp_path, protocol, FIGURE3_MORE)
    try:
        text = _caption(fig)
        assert "clean pass over the training set" in text and "running mean" not in text
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "training NLL" in legend and "training NLL (under weight noise)" not in legend
    finally:
        plt.close(fig)


def test_caption_without_weight_noise_does_not_claim_it(tmp_path: Path) -> None:
    protocol = _sweep(tmp_path, "speech/a", weight_noise=0.0)
    fig = _figure(tmp_path, protocol, FIGURE3_MAIN)
    try:
        assert "no weight noise" in _caption(fig)
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "training NLL (under weight noise)" not in legend
    finally:
        plt.close(fig)
