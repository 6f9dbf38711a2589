"""What TensorBoard shows of runs: NLLs under the data set, Figure 3 as custom scalars (read
back through TensorBoard's own plugin), hparams led by unit, lr and seed, final metrics last."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from small_runs import small_config
from tensorboard import context
from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.custom_scalar.custom_scalars_plugin import CustomScalarsPlugin
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams.backend_context import _sort_and_reduce_to_hparams_limit
from tensorboard.plugins.scalar.scalars_plugin import ScalarsPlugin

from gru_repro.train import run
from gru_repro.training.tensorboard_views import figure3_layout, nll_tags

UNITS = ("tanh", "gru")


def _config(unit: str):
    return small_config("trainer.max_epochs=3", "trainer.eval_every=2", f"model={unit}")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    """Two tiny runs (tanh, gru) in one log dir, as a sweep leaves them."""
    root = tmp_path_factory.mktemp("tb")
    for unit in UNITS:
        run(_config(unit), root / unit)
    return root


def _accumulator(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder))
    events.Reload()
    return events


def test_epoch_nlls_are_written_under_the_data_set_and_the_old_tags(logdir: Path) -> None:
    events = _accumulator(logdir / "gru")
    tags = set(events.Tags()["scalars"])
    assert {"train/nll", "valid/nll", "train/grad_norm", "train/lr"} <= tags
    grouped = nll_tags("synthetic", "gru")
    assert grouped == ("synthetic/gru/train_nll", "synthetic/gru/valid_nll")
    for old, new in (("train/nll", grouped.train), ("valid/nll", grouped.valid)):
        assert [(e.step, e.value) for e in events.Scalars(old)] == [
            (e.step, e.value) for e in events.Scalars(new)
        ]
    # epochs 0, 2 and the last (3) are validated: 3 valid points, 4 train points
    assert len(events.Scalars(grouped.valid)) == 3 and len(events.Scalars(grouped.train)) == 4


def test_custom_scalars_layout_has_figure3_panels_per_data_set_and_unit(logdir: Path) -> None:
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    plugins: dict = {}  # the plugins TensorBoard would load, by name
    tb = base_plugin.TBContext(
        logdir=str(logdir),
        multiplexer=mux,
        data_provider=MultiplexerDataProvider(mux, ""),
        plugin_name_to_instance=plugins,
    )
    plugins["scalars"] = ScalarsPlugin(tb)
    plugin = plugins["custom_scalars"] = CustomScalarsPlugin(tb)
    ctx = context.RequestContext()
    layout = json.loads(plugin.layout_impl(ctx, ""))  # what the Custom Scalars tab gets
    (category,) = layout["category"]
    assert category["title"] == "Figure 3: synthetic"
    charts = {c["title"]: c["multiline"]["tag"] for c in category["chart"]}
    assert len(charts) == 3 + len(UNITS)  # every unit: both, valid, train; then one per unit
    (panel,) = [t for title, t in charts.items() if "the paper's panel" in title]
    (valid_chart,) = [t for title, t in charts.items() if "validation NLL per unit" in title]
    (train_chart,) = [t for title, t in charts.items() if "training NLL per unit" in title]
    assert "(epoch mean, noisy weights)" in next(t for t in charts if "training NLL" in t)
    for unit in UNITS:
        (unit_chart,) = [t for title, t in charts.items() if title.startswith(f"synthetic/{unit}:")]
        tags = nll_tags("synthetic", unit)
        assert [bool(re.match(unit_chart[0], t)) for t in tags] == [True, True]
        assert [bool(re.match(panel[0], t)) for t in tags] == [True, True]
        assert re.match(valid_chart[0], tags.valid) and not re.match(valid_chart[0], tags.train)
        assert re.match(train_chart[0], tags.train) and not re.match(train_chart[0], tags.valid)
        other = nll_tags("synthetic", next(u for u in UNITS if u != unit))
        assert not re.match(unit_chart[0], other.valid)
        # the plugin finds the run's curve through the chart's regex
        found = plugin.scalars_impl(ctx, unit, valid_chart[0], "")
        assert found["regex_valid"] and list(found["tag_to_events"]) == [tags.valid]
    assert not any(re.match(valid_chart[0], t) for t in ("valid/nll", "jsb/gru/valid_nll"))


def test_layout_escapes_the_data_set_name() -> None:
    (charts,) = figure3_layout("a.b", "gru", "clean pass").values()
    regex = next(tags[0] for title, (_, tags) in charts.items() if "validation" in title)
    assert re.match(regex, "a.b/gru/valid_nll") and not re.match(regex, "axb/gru/valid_nll")


def test_hparams_lead_with_unit_lr_seed_and_final_metrics_sort_last(logdir: Path) -> None:
    events = _accumulator(logdir / "gru")
    content = events.PluginTagToContent("hparams")[hparams_metadata.EXPERIMENT_TAG]
    experiment = hparams_metadata.parse_experiment_plugin_data(content)
    _sort_and_reduce_to_hparams_limit(experiment)  # TensorBoard's order; it shows the first 5
    names = [info.name for info in experiment.hparam_infos]
    assert set(names[:3]) == {"unit", "lr", "seed"} and "dataset" in names
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics == [f"with_best_weights/{s}_nll" for s in ("train", "valid", "test")]
    scalar_tags = set(events.Tags()["scalars"])
    assert set(metrics) <= scalar_tags and not any(t.startswith("hparam/") for t in scalar_tags)
    groups = sorted({t.split("/", 1)[0] for t in scalar_tags})
    assert groups[-1] == "with_best_weights"  # below the curves in the Time Series tab
