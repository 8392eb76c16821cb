"""The statistics of interactions and experiments against numbers worked out by hand, and
against scipy (the oracle: too big for the API's Lambda layer, so not what Reel runs)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chalicelib.landing.pages import Page, PageScene
from chalicelib.template.model import Template
from chalicelib.tracking.events import Event
from chalicelib.tracking.experiments import (
    credible_interval,
    experiment_reports,
    interaction_stats,
    p_beats,
    scene_drop_off,
    two_proportion_p,
)


def test_p_beats_by_hand() -> None:
    # A: 0 of 1 → Beta(1, 2), F_A(x) = 2x − x²; B: 1 of 1 → Beta(2, 1), f_B(x) = 2x
    # P(B > A) = ∫ 2x (2x − x²) dx over [0, 1] = 4/3 − 1/2 = 5/6
    assert p_beats(1, 1, 0, 1) == pytest.approx(5 / 6, abs=1e-6)
    assert p_beats(0, 1, 1, 1) == pytest.approx(1 / 6, abs=1e-6)
    assert p_beats(0, 0, 0, 0) == pytest.approx(0.5, abs=1e-6)  # two uniforms


def test_credible_interval_by_hand() -> None:
    assert credible_interval(0, 0) == pytest.approx((0.025, 0.975))  # Beta(1, 1): uniform
    # Beta(1, 2): F(x) = 1 − (1 − x)², so x = 1 − √(1 − q)
    low, high = credible_interval(0, 1)
    assert low == pytest.approx(1 - math.sqrt(0.975), abs=1e-9)  # 0.012579
    assert high == pytest.approx(1 - math.sqrt(0.025), abs=1e-9)  # 0.841886


def test_two_proportion_test_by_hand() -> None:
    # 10/100 vs 20/100: pooled 0.15, se = √(0.15 · 0.85 · 0.02) = 0.050498, z = 1.98030
    # p = 2 (1 − Φ(1.98030)) = 0.047672
    assert two_proportion_p(10, 100, 20, 100) == pytest.approx(0.047672, abs=2e-6)
    assert two_proportion_p(0, 10, 0, 10) is None  # no variance
    assert two_proportion_p(0, 0, 1, 10) is None  # an empty arm


@pytest.mark.parametrize(
    ("k_a", "n_a", "k_b", "n_b"),
    [(3, 40, 9, 41), (120, 1000, 150, 1000), (0, 5, 5, 5), (7, 7, 0, 9)],
)
def test_the_same_numbers_as_scipy(k_a: int, n_a: int, k_b: int, n_b: int) -> None:
    from scipy import integrate, stats

    a = stats.beta(1 + k_a, 1 + n_a - k_a)
    b = stats.beta(1 + k_b, 1 + n_b - k_b)
    expected, _ = integrate.quad(lambda x: b.pdf(x) * a.cdf(x), 0, 1, limit=500)
    assert p_beats(k_b, n_b, k_a, n_a) == pytest.approx(expected, abs=1e-7)
    assert credible_interval(k_b, n_b) == pytest.approx(tuple(b.ppf([0.025, 0.975])), abs=1e-9)
    pooled = (k_a + k_b) / (n_a + n_b)
    z = (k_b / n_b - k_a / n_a) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    assert two_proportion_p(k_a, n_a, k_b, n_b) == pytest.approx(
        2 * stats.norm.sf(abs(z)), rel=1e-9
    )


TEMPLATE = Template.model_validate(
    {
        "id": "t",
        "scenes": [{"id": "a", "duration": 4}, {"id": "b", "duration": 6}],
        "chapters": [{"id": "b", "title": "B", "scene": "b"}],
        "interactions": [
            {"type": "button", "id": "go", "scene": "a", "label": "Go", "action": {"seek": 5}},
            {
                "type": "choice",
                "id": "pick",
                "scene": "b",
                "label": "?",
                "variable": "v",
                "options": [{"label": "X", "value": "x"}, {"label": "Y", "value": "y"}],
            },
        ],
        "variables": {"v": {"type": "enum", "values": ["x", "y"]}},
        "experiments": [{"id": "cta", "variants": [{"id": "a"}, {"id": "b"}], "metric": "clicked"}],
    }
)


def page(rid: str, variant: str = "a") -> Page:
    return Page(
        token=f"tok-{rid}-0000000000",
        campaign_id="t",
        recipient_id=rid,
        video_key="v",
        poster_key="p",
        title="t",
        width=160,
        height=96,
        duration=10.0,
        created_at=0,
        experiments={"cta": variant},
        scenes=[PageScene(id="a", start=0, end=4), PageScene(id="b", start=4, end=10)],
    )


def ev(rid: str, n: int, kind: str, **extra: Any) -> Event:
    return Event(
        id=f"{rid}-{n:06d}",
        kind=kind,
        ts=n,
        campaign_id="t",
        recipient_id=rid,
        received_at=n,
        **extra,
    )


def test_click_through_and_the_split_of_choices() -> None:
    events = [
        ev("r1", 1, "interaction_shown", interaction="go"),
        ev("r1", 2, "interaction_click", interaction="go"),
        ev("r1", 3, "interaction_click", interaction="go"),  # the same recipient again
        ev("r2", 1, "interaction_shown", interaction="go"),
        ev("r3", 1, "interaction_shown", interaction="go"),
        ev("r4", 1, "interaction_shown", interaction="go"),
        ev("r1", 4, "choice", interaction="pick", option="x"),
        ev("r1", 5, "choice", interaction="pick", option="y"),  # changed their mind: y
        ev("r2", 2, "choice", interaction="pick", option="y"),
        ev("r3", 2, "choice", interaction="pick", option="x"),
    ]
    go, pick = interaction_stats(TEMPLATE, events)
    assert (go.shown, go.clicked, go.click_through) == (4, 1, 0.25)
    assert pick.choices == {"x": 1, "y": 2}
    assert (pick.shown, pick.clicked) == (3, 3)


def test_scene_drop_off() -> None:
    pages = [page("r1"), page("r2"), page("r3"), page("r4")]
    events = [
        ev("r1", 1, "play", position=0),
        ev("r1", 2, "pause", position=2.5),  # stops in a
        ev("r2", 1, "play", position=0),
        ev("r2", 2, "progress", progress=60, position=6),
        ev("r3", 1, "play", position=0),
        ev("r3", 2, "ended", position=10),  # completes
        ev("r4", 1, "impression"),  # never played: not counted
    ]
    found = {s.scene: (s.reached, s.stopped, s.drop_off) for s in scene_drop_off(pages, events)}
    assert found == {"a": (3, 1, pytest.approx(1 / 3)), "b": (2, 1, 0.5)}


def test_experiment_report_names_the_leader_and_whether_the_data_suffices() -> None:
    # GIVEN 40 recipients per variant: 4 clicked in a, 20 in b
    pages = [page(f"a{i}", "a") for i in range(40)] + [page(f"b{i}", "b") for i in range(40)]
    events = [ev(f"a{i}", 1, "cta_click") for i in range(4)]
    events += [ev(f"b{i}", 1, "cta_click") for i in range(20)]
    [report] = experiment_reports(TEMPLATE, pages, events)
    a, b = report.variants
    assert (a.sent, a.clicked, a.rate, b.clicked, b.rate) == (40, 4, 0.1, 20, 0.5)
    assert (report.leader, report.enough_data) == ("b", True)
    assert b.p_beats_control is not None and b.p_beats_control > 0.999
    # pooled 24/80 = 0.3; se = √(0.3·0.7·(2/40)) = 0.102470; z = 0.4/0.102470 = 3.90360
    assert b.p_value == pytest.approx(2 * 0.5 * math.erfc(3.90360 / math.sqrt(2)), rel=1e-4)
    assert a.p_beats_control is None and a.low < 0.1 < a.high
    assert "b beats the control" in report.verdict
    # WHEN there are only 10 recipients a variant, the same rates are not enough
    few = [page(f"a{i}", "a") for i in range(10)] + [page(f"b{i}", "b") for i in range(10)]
    [small] = experiment_reports(TEMPLATE, few, events)
    assert (small.leader, small.enough_data) == ("b", False)
    assert small.verdict.startswith("not enough data: fewer than 30")
