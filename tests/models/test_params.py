"""Parameter counts by part, budget matching, and the paper's Table 1 numbers."""

from __future__ import annotations

import pytest

from gru_repro.models import build_model, count_module_parameters, count_parameters
from gru_repro.models import match_hidden_size as match


@pytest.mark.parametrize(
    ("unit", "hidden", "expected"),
    [("tanh", 400, 168_400), ("gru", 227, 168_888), ("lstm", 195, 169_065)],
)
def test_speech_table1_counts_exact(unit: str, hidden: int, expected: int) -> None:
    assert count_parameters(unit, 20, hidden)["recurrent_layer"] == expected


def test_speech_lstm_without_peepholes_would_not_round_to_table1() -> None:
    assert count_parameters("lstm", 20, 195, peephole=False)["recurrent_layer"] == 168_480


@pytest.mark.parametrize(
    ("unit", "budget", "hidden"), [("tanh", 20_100, 100), ("gru", 20_286, 46), ("lstm", 19_836, 36)]
)
def test_music_nominal_input_budgets_give_paper_sizes(unit: str, budget: int, hidden: int) -> None:
    assert match(unit, 100, budget) == hidden
    assert count_parameters(unit, 100, hidden)["recurrent_layer"] == budget


@pytest.mark.parametrize(
    ("unit", "budget", "hidden", "count"),
    [("tanh", 20_100, 104, 20_072), ("gru", 20_200, 49, 20_286), ("lstm", 19_800, 39, 20_085)],
)
def test_music_real_88_input_budgets(unit: str, budget: int, hidden: int, count: int) -> None:
    assert match(unit, 88, budget) == hidden
    assert count_parameters(unit, 88, hidden)["recurrent_layer"] == count


def test_music_88_input_at_paper_sizes() -> None:
    counts = [
        count_parameters(u, 88, h)["recurrent_layer"]
        for u, h in [("tanh", 100), ("gru", 46), ("lstm", 36)]
    ]
    assert counts == [18_900, 18_630, 18_108]


def test_parts() -> None:
    c = count_parameters("lstm", 20, 195, output_size=88)
    assert c["input_to_hidden"] == 4 * 195 * 20
    assert c["recurrent"] == 4 * 195 * 195
    assert c["peephole"] == 3 * 195
    assert c["bias"] == 4 * 195
    assert c["output"] == 195 * 88 + 88
    assert c["total"] == c["recurrent_layer"] + c["output"]
    assert count_parameters("gru", 20, 10, reset_after=True)["bias"] == 2 * 30


@pytest.mark.parametrize(
    ("unit", "options"),
    [
        ("tanh", {}),
        ("gru", {}),
        ("gru", {"reset_after": True}),
        ("lstm", {}),
        ("lstm", {"peephole": False}),
    ],
)
def test_formula_agrees_with_built_model(unit: str, options: dict) -> None:
    model = build_model(unit, 88, 88, hidden_size=17, **options)
    assert count_module_parameters(model) == count_parameters(unit, 88, 17, 88, **options)
    assert sum(p.numel() for p in model.parameters()) == count_module_parameters(model)["total"]


def test_gmm_head_output_count() -> None:
    c = count_parameters("gru", 20, 8, 10, head="gmm", head_options={"n_components": 3})
    assert c["output"] == 8 * 3 * (1 + 2 * 10) + 3 * (1 + 2 * 10)


def test_match_picks_nearest_and_ties_low() -> None:
    # tanh, input 1: count(H) = H^2 + 2H -> 3, 8, 15, 24, ...
    assert match("tanh", 1, 10) == 2  # 8 is nearer than 15
    assert match("tanh", 1, 12) == 3  # 15 is nearer than 8
    assert match("tanh", 1, 1) == 1


@pytest.mark.parametrize("budget", [0, -5, 2.5, True])
def test_bad_budget(budget) -> None:
    with pytest.raises(ValueError, match="budget must be a positive int"):
        match("gru", 20, budget)


def test_unknown_option() -> None:
    with pytest.raises(ValueError, match="peephole.*'gru'.*reset_after"):
        count_parameters("gru", 20, 10, peephole=True)
