"""The analytics with anonymous views and non-consenting recipients (pure): the funnel counts
every view, rows exist only for consenting recipients, and the period is the oldest event's."""

from __future__ import annotations

from chalicelib.landing.pages import Page
from chalicelib.tracking.analytics import campaign_report
from chalicelib.tracking.events import ANONYMOUS, Event, EventKind


def page(rid: str) -> Page:
    return Page(
        token=f"tok-{rid}-0000000", campaign_id="c", recipient_id=rid, video_key="v",
        poster_key="p", title="t", width=16, height=16, duration=10.0, created_at=0.0,
    )  # fmt: skip


def event(rid: str, eid: str, kind: str, at: float, view: str | None = None, **kw: int) -> Event:
    return Event(
        id=eid, kind=EventKind(kind), ts=at, campaign_id="c", recipient_id=rid, received_at=at,
        view=view, **kw,
    )  # fmt: skip


def test_anonymous_views_count_in_the_funnel_and_never_as_rows() -> None:
    events = [
        event("ada", "ev-ada-0001", "play", 100.0),
        event("ada", "ev-ada-0002", "ended", 110.0),
        # two anonymous views (one played half, one only opened), e.g. Bo's, who said no
        event(ANONYMOUS, "ev-an1-0001", "play", 50.0, view="view-one-01"),
        event(ANONYMOUS, "ev-an1-0002", "progress", 55.0, view="view-one-01", progress=50),
        event(ANONYMOUS, "ev-an2-0001", "impression", 60.0, view="view-two-01"),
    ]
    report = campaign_report(
        "c", [page("ada"), page("bo")], events, 200.0, consenting={"ada"}, events_kept_days=30
    )
    funnel = {s.step: s.count for s in report.funnel}
    assert funnel == {"sent": 2, "opened": 3, "played": 2, "25%": 2, "50%": 2, "75%": 1,
                      "100%": 1, "clicked": 0}  # fmt: skip
    assert [r.recipient_id for r in report.recipients] == ["ada"]
    assert report.anonymous_views == 2
    assert (report.period_start, report.events_kept_days) == (50.0, 30)
    assert [p.share for p in report.retention][5] == 1.0  # both who played reached 50 %
