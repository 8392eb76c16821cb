"""What the interactions and experiments did (pure functions of pages and events): per-interaction
click-through, the split of choices, scene drop-off, and per variant the funnel with its
uncertainty, the probability of beating the control and a two-proportion test.

Definitions. A recipient *saw* an interaction when an `interaction_shown` of theirs names it;
*clicked* when an `interaction_click` does (click-through = clicked / saw, recipients counted
once each); a choice's split counts each recipient's latest choice. Drop-off: a recipient who
played stopped at the furthest point they reached (the highest progress step, or the furthest
position a pause, a progress or the end carried); a scene *reached* counts those whose furthest
point is at or after its start, *stopped* those whose furthest point falls inside it without
completing the video. Per variant, each rate is recipients who did it / recipients assigned
(sent); its 95 % interval is the central interval of the Beta(1 + k, 1 + n − k) posterior;
P(beats control) = P(rate_variant > rate_control) under the two posteriors (exact, by Evan
Miller's closed form); the two-proportion z-test is two-sided with the pooled rate.
The data suffices when every variant has at least MIN_SAMPLE recipients and the leader beats
the control with probability ≥ DECISIVE (or, when the control leads, no variant beats it with
probability above 1 − DECISIVE).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from chalicelib.landing.pages import Page
from chalicelib.template.model import Experiment, Template
from chalicelib.tracking.analytics import recipient_stats
from chalicelib.tracking.events import ANONYMOUS, Event, EventKind
from chalicelib.tracking.reports import (
    ExperimentReport,
    InteractionStats,
    SceneDropOff,
    VariantStats,
)

MIN_SAMPLE = 30
DECISIVE = 0.95
_ACTED = frozenset({EventKind.interaction_click, EventKind.choice, EventKind.form_submit})


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b): Beta(a, b)'s CDF at x."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """Beta(a, b)'s quantile: the CDF inverted by bisection (monotone, to double precision)."""
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = (low + high) / 2
        if beta_cdf(middle, a, b) < q:
            low = middle
        else:
            high = middle
        if high - low < 1e-15:
            break
    return (low + high) / 2


def credible_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of Beta(1 + k, 1 + n − k): a uniform prior, k of n."""
    tail = (1 - level) / 2
    return beta_ppf(tail, 1 + k, 1 + n - k), beta_ppf(1 - tail, 1 + k, 1 + n - k)


def p_beats(k_b: int, n_b: int, k_a: int, n_a: int) -> float:
    """P(p_B > p_A) with p ~ Beta(1 + k, 1 + n − k) each, exactly (integer α_B: the sum of
    Evan Miller's closed form, in logarithms)."""
    a_a, b_a, a_b, b_b = 1 + k_a, 1 + n_a - k_a, 1 + k_b, 1 + n_b - k_b
    total = 0.0
    for i in range(a_b):
        total += math.exp(
            _log_beta(a_a + i, b_b + b_a)
            - math.log(b_b + i)
            - _log_beta(1 + i, b_b)
            - _log_beta(a_a, b_a)
        )
    return min(1.0, max(0.0, total))


def two_proportion_p(k_a: int, n_a: int, k_b: int, n_b: int) -> float | None:
    """The two-sided p-value of the pooled two-proportion z-test; None when it is undefined
    (an empty arm, or every or no recipient converting in both)."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return None
    z = (k_b / n_b - k_a / n_a) / se
    return math.erfc(abs(z) / math.sqrt(2))  # 2 · (1 − Φ(|z|))


# ── per interaction and per scene ───────────────────────────────────────────────────────────


def _who(e: Event) -> str:
    return e.recipient_id if e.recipient_id != ANONYMOUS else f"view:{e.view or e.id}"


def interaction_stats(template: Template, events: Iterable[Event]) -> list[InteractionStats]:
    saw: dict[str, set[str]] = defaultdict(set)
    acted: dict[str, set[str]] = defaultdict(set)
    latest: dict[str, dict[str, tuple[float, str]]] = defaultdict(dict)
    for e in events:
        if e.interaction is None:
            continue
        who = _who(e)
        if e.kind is EventKind.interaction_shown:
            saw[e.interaction].add(who)
        elif e.kind in _ACTED:
            acted[e.interaction].add(who)
            saw[e.interaction].add(who)  # a lost shown beacon does not hide that it was seen
            if e.kind is EventKind.choice and e.option is not None:
                before = latest[e.interaction].get(who)
                if before is None or before[0] <= e.ts:
                    latest[e.interaction][who] = (e.ts, e.option)
    out = []
    for item in template.interactions:
        shown, clicked = len(saw[item.id]), len(acted[item.id])
        choices: dict[str, int] = {}
        if item.type == "choice":
            choices = {o.value: 0 for o in item.options}
            for _, option in latest[item.id].values():
                if option in choices:
                    choices[option] += 1
        out.append(
            InteractionStats(
                id=item.id,
                type=item.type,
                shown=shown,
                clicked=clicked,
                click_through=clicked / shown if shown else 0.0,
                choices=choices,
            )
        )
    return out


def _furthest(page: Page, mine: Sequence[Event]) -> tuple[float, bool]:
    stats = recipient_stats(page.recipient_id, mine, page.duration)
    furthest = stats.max_progress / 100 * page.duration
    for e in mine:
        if e.kind in (EventKind.pause, EventKind.progress, EventKind.ended) and e.position:
            furthest = max(furthest, min(e.position, page.duration))
    return furthest, stats.completed


def scene_drop_off(pages: Iterable[Page], events: Iterable[Event]) -> list[SceneDropOff]:
    by_recipient: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_recipient[e.recipient_id].append(e)
    reached: dict[str, int] = {}
    stopped: dict[str, int] = {}
    for page in pages:
        mine = by_recipient.get(page.recipient_id, [])
        if not any(e.kind in (EventKind.play, EventKind.progress, EventKind.ended) for e in mine):
            continue
        furthest, completed = _furthest(page, mine)
        for scene in page.scenes:
            reached.setdefault(scene.id, 0)
            stopped.setdefault(scene.id, 0)
            if furthest >= scene.start:
                reached[scene.id] += 1
                if not completed and furthest < scene.end:
                    stopped[scene.id] += 1
    return [
        SceneDropOff(
            scene=sid,
            reached=n,
            stopped=stopped[sid],
            drop_off=stopped[sid] / n if n else 0.0,
        )
        for sid, n in reached.items()
    ]


# ── per variant ─────────────────────────────────────────────────────────────────────────────


def experiment_reports(
    template: Template, pages: Iterable[Page], events: Iterable[Event]
) -> list[ExperimentReport]:
    pages = list(pages)
    by_recipient: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.recipient_id != ANONYMOUS:
            by_recipient[e.recipient_id].append(e)
    return [_experiment(exp, pages, by_recipient) for exp in template.experiments]


def _experiment(
    exp: Experiment, pages: Sequence[Page], events: Mapping[str, Sequence[Event]]
) -> ExperimentReport:
    control = exp.control or exp.variants[0].id
    counts: dict[str, dict[str, int]] = {
        v.id: dict.fromkeys(("sent", "opened", "played", "completed", "clicked", "interacted"), 0)
        for v in exp.variants
    }
    for page in pages:
        variant = page.experiments.get(exp.id)
        if variant not in counts:
            continue
        mine = events.get(page.recipient_id, [])
        stats = recipient_stats(page.recipient_id, mine, page.duration)
        c = counts[variant]
        c["sent"] += 1
        c["opened"] += stats.opened
        c["played"] += stats.played
        c["completed"] += stats.completed
        c["clicked"] += stats.clicked
        c["interacted"] += any(e.kind in _ACTED for e in mine)
    base = counts[control]
    rows = []
    for v in exp.variants:
        c = counts[v.id]
        k, n = c[exp.metric], c["sent"]
        low, high = credible_interval(k, n)
        is_control = v.id == control
        rows.append(
            VariantStats(
                id=v.id,
                **c,
                rate=k / n if n else 0.0,
                low=round(low, 4),
                high=round(high, 4),
                p_beats_control=None
                if is_control
                else round(p_beats(k, n, base[exp.metric], base["sent"]), 4),
                p_value=None
                if is_control
                else two_proportion_p(base[exp.metric], base["sent"], k, n),
            )
        )

    # The leader: the highest posterior mean (ties: the control, then the file's order)
    def mean(row: VariantStats) -> float:
        return (1 + counts[row.id][exp.metric]) / (2 + row.sent)

    leader = max(rows, key=lambda r: (mean(r), r.id == control))
    small = [r.id for r in rows if r.sent < MIN_SAMPLE]
    if leader.id == control:
        decisive = all(
            r.p_beats_control is not None and r.p_beats_control <= 1 - DECISIVE
            for r in rows
            if r.id != control
        )
    else:
        decisive = (leader.p_beats_control or 0) >= DECISIVE
    enough = not small and decisive
    if small:
        verdict = f"not enough data: fewer than {MIN_SAMPLE} recipients in {', '.join(small)}"
    elif not decisive:
        verdict = f"not enough data: {leader.id} leads, but not with {DECISIVE:.0%} probability"
    elif leader.id == control:
        verdict = f"the control ({control}) wins"
    else:
        verdict = f"{leader.id} beats the control with P = {leader.p_beats_control:.1%}"
    return ExperimentReport(
        id=exp.id,
        metric=exp.metric,
        control=control,
        variants=rows,
        leader=leader.id,
        enough_data=enough,
        verdict=verdict,
    )
