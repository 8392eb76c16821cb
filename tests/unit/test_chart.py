"""Chart drawing (pure Pillow), its number formats, and the chart layer's model."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from chalicelib.render import chart
from chalicelib.template.model import ChartLayer, Variable, VarType
from chalicelib.template.values import coerce, numbers

RED = "#ff0000"


def _alpha(layer: ChartLayer, p: float, size: tuple[int, int] = (400, 200)) -> np.ndarray:
    return np.asarray(chart.draw(layer, size, 1.0, p))[..., 3]


def _red(layer: ChartLayer, p: float, size: tuple[int, int] = (400, 200)) -> np.ndarray:
    px = np.asarray(chart.draw(layer, size, 1.0, p)).astype(int)
    return (px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 3] > 200)


def test_numbers_are_written_as_the_locale_writes_them() -> None:
    fr = ChartLayer(kind="counter", values=[1234567.5], locale="fr_FR", style={"decimals": 1})
    assert chart.format_value(fr, 1234567.5, 1) == "1\u202f234\u202f567,5"
    de = ChartLayer(kind="counter", values=[4890], locale="de_DE", style={"currency": "EUR"})
    assert chart.format_value(de, 4890, 0) == "4.890,00\xa0€"
    gb = ChartLayer(kind="bar", values=[1], unit="GB")
    assert chart.format_value(gb, 1500, 0) == "1,500 GB"


def test_the_build_up_is_eased_and_ends_complete() -> None:
    assert chart.progress(0, 31) == 0.0 and chart.progress(30, 31) == 1.0
    assert chart.progress(15, 31) > 0.5  # cubic ease-out: fast first, slow to settle
    assert chart.frame_count(ChartLayer(values=[1], animate=1.0), 30) == 31
    assert chart.frame_count(ChartLayer(values=[1], animate=0), 30) == 1


def test_bars_grow_in_proportion_to_their_values() -> None:
    layer = ChartLayer(values=[10, 5], max=10, style={"color": RED, "show_values": False})
    assert not _alpha(layer, 0.0).any()
    red = _red(layer, 1.0)
    left, right = red[:, :200].sum(axis=0).max(), red[:, 200:].sum(axis=0).max()
    assert left == pytest.approx(2 * right, rel=0.05)
    half = _red(layer, 0.5)[:, :200].sum(axis=0).max()
    assert half == pytest.approx(left / 2, rel=0.1)


def test_a_progress_bar_fills_its_share() -> None:
    layer = ChartLayer(kind="progress", values=[25], max=100, style={"color": RED})
    cols = _red(layer, 1.0).any(axis=0)
    assert cols.sum() == pytest.approx(100, abs=4)  # a quarter of 400 px


def test_a_single_value_donut_is_a_gauge_against_max() -> None:
    layer = ChartLayer(
        kind="donut", values=[50], max=100, style={"color": RED, "show_values": False}
    )
    red = _red(layer, 1.0, (200, 200))
    # the right half of the ring (from 12 o'clock clockwise to 6) is red, the left is not
    assert red[:, 105:].sum() > 2000 and red[:, :95].sum() == 0


def test_a_line_draws_itself() -> None:
    layer = ChartLayer(kind="line", values=[1, 5, 2, 8], style={"color": RED, "show_values": False})
    early, late = _red(layer, 0.3).sum(), _red(layer, 1.0).sum()
    assert 0 < early < late
    assert _red(layer, 0.3)[:, 300:].sum() == 0  # the right end is not drawn yet


def test_a_counter_counts_up() -> None:
    layer = ChartLayer(kind="counter", values=[9876], style={"text_color": RED})
    assert _red(layer, 0.0).sum() < _red(layer, 1.0).sum()  # "0" then "9,876"


def test_the_chart_model_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ValidationError, match="at most 60"):
        ChartLayer(values=[1] * 61)
    with pytest.raises(ValidationError, match="list of numbers"):
        ChartLayer(values="12, 14")
    with pytest.raises(ValidationError, match="not a colour"):
        ChartLayer(values=[1], style={"color": "red"})


def test_a_numbers_variable_takes_lists_and_semicolon_text() -> None:
    var = Variable(type=VarType.numbers, min=0)
    assert coerce(var, "1; 2.5 ;3") == [1, 2.5, 3]
    assert coerce(var, [1, "2", 3.0]) == [1, 2, 3]
    assert numbers(7) == [7]
    for bad, reason in ((True, "list of numbers"), ([1, True], "item 2"), ("1;nan", "item 2")):
        with pytest.raises(ValueError, match=reason):
            coerce(var, bad)
    with pytest.raises(ValueError, match="below the minimum"):
        coerce(var, [1, -1])
