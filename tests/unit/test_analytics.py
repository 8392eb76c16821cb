"""Campaign analytics on hand-made event streams: per-recipient stats, funnel and retention."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from chalicelib.landing.pages import Page
from chalicelib.tracking.analytics import (
    FUNNEL_STEPS,
    campaign_report,
    percent,
    recipient_stats,
)
from chalicelib.tracking.events import Event, EventKind

CAMPAIGN = "spring"
DURATION = 30.0
T0 = 1_700_000_000_000.0  # client ms
_ids = itertools.count()


def ev(kind: str, t: float, recipient: str = "r1", **fields: Any) -> Event:
    """An event `t` seconds into the session; the server receives it 0.5 s later."""
    return Event(
        id=f"e{next(_ids):07d}",
        kind=EventKind(kind),
        ts=T0 + t * 1000,
        campaign_id=fields.pop("campaign_id", CAMPAIGN),
        recipient_id=recipient,
        received_at=T0 / 1000 + t + 0.5,
        **fields,
    )


def progress(pct: int, t: float, recipient: str = "r1", offset: float = 0.0) -> Event:
    return ev("progress", t, recipient, progress=pct, position=offset + pct / 100 * DURATION)


def full_view(recipient: str = "r1", start: float = 0.0) -> list[Event]:
    """impression, play, each progress step once (a step every 3 s), ended — no pause."""
    events = [ev("impression", start, recipient), ev("play", start + 1, recipient, position=0.0)]
    events += [progress(p, start + 1 + p * 0.3, recipient) for p in range(10, 101, 10)]
    events.append(ev("ended", start + 31.1, recipient, position=DURATION))
    return events


def page(recipient: str, duration: float = DURATION) -> Page:
    return Page(
        token=f"tok-{recipient}",
        campaign_id=CAMPAIGN,
        recipient_id=recipient,
        video_key=f"v/{recipient}.mp4",
        poster_key=f"v/{recipient}.jpg",
        title="Hi",
        width=1280,
        height=720,
        duration=duration,
        created_at=T0 / 1000,
    )


def test_a_straight_full_view_is_completed_and_watched_for_the_duration() -> None:
    events = full_view()
    s = recipient_stats("r1", events, DURATION)
    assert (s.opened, s.played, s.completed, s.clicked) == (True, True, True, False)
    assert s.max_progress == 100
    assert s.views == 1
    assert s.watch_time == pytest.approx(DURATION)
    assert s.last_seen == max(e.received_at for e in events)


def test_seeking_back_never_lowers_progress_and_counts_only_time_played() -> None:
    # GIVEN a viewer who plays to 12 s (40 %), jumps back to 3 s, and pauses at 18 s
    events = [
        ev("impression", 0),
        ev("play", 1, position=0.0),
        *(progress(p, 1 + p * 0.3) for p in (10, 20, 30, 40)),
        ev("seek", 13.5, seek_from=12.0, position=3.0),
        progress(50, 26.5),  # the player re-crossed 10..40 silently; 50 % is new
        ev("pause", 29.5, position=18.0),
    ]
    s = recipient_stats("r1", events, DURATION)
    # THEN progress is the highest step, and both spans count: 0→12 and 3→18
    assert s.max_progress == 50
    assert s.watch_time == pytest.approx(12 + 15)
    assert not s.completed


def test_a_seek_back_after_the_last_beacon_keeps_max_progress() -> None:
    events = [ev("play", 0, position=0.0), progress(80, 24)]
    events.append(ev("seek", 25, seek_from=24.5, position=1.0))
    events.append(ev("pause", 26, position=2.0))
    s = recipient_stats("r1", events, DURATION)
    assert s.max_progress == 80
    assert s.watch_time == pytest.approx(24.5 + 1.0)


def test_a_seek_while_paused_starts_nothing() -> None:
    events = [
        ev("play", 0, position=0.0),
        ev("pause", 5, position=5.0),
        ev("seek", 6, seek_from=5.0, position=25.0),
        ev("play", 60, position=25.0),
        ev("ended", 65, position=30.0),
    ]
    s = recipient_stats("r1", events, DURATION)
    assert s.watch_time == pytest.approx(5 + 5)
    assert s.max_progress == 100  # `ended` counts as 100 %


def test_a_replay_counts_a_view_but_not_more_progress() -> None:
    # GIVEN a full view, a replay from the start, and a pause at 15 s
    events = full_view()
    events += [ev("replay", 40, position=0.0)]
    events += [progress(p, 40 + p * 0.3) for p in (10, 20, 30, 40, 50)]
    events += [ev("pause", 55.5, position=15.0)]
    s = recipient_stats("r1", events, DURATION)
    assert s.views == 2
    assert s.max_progress == 100
    assert s.completed
    assert s.watch_time == pytest.approx(DURATION + 15)


def test_a_second_full_view_doubles_watch_time_not_progress() -> None:
    events = [*full_view(), ev("replay", 40)]  # a replay without a position starts at 0
    events += [progress(p, 40 + p * 0.3) for p in range(10, 101, 10)]
    events += [ev("ended", 71, position=DURATION)]
    s = recipient_stats("r1", events, DURATION)
    assert (s.views, s.max_progress) == (2, 100)
    assert s.watch_time == pytest.approx(2 * DURATION)


def test_out_of_order_beacons_give_the_same_stats() -> None:
    events = [*full_view(), ev("cta_click", 32, position=DURATION)]
    expected = recipient_stats("r1", events, DURATION)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != events
    assert recipient_stats("r1", shuffled, DURATION) == expected
    assert recipient_stats("r1", list(reversed(events)), DURATION) == expected


def test_equal_client_times_are_ordered_by_arrival() -> None:
    # GIVEN a pause and a play sent in the same millisecond; the pause arrived first
    play = ev("play", 0, position=0.0)
    pause = ev("pause", 10, position=10.0).model_copy(update={"received_at": 100.0})
    resume = ev("play", 10, position=10.0).model_copy(update={"received_at": 101.0})
    end = ev("pause", 20, position=20.0)
    s = recipient_stats("r1", [end, resume, pause, play], DURATION)
    assert s.watch_time == pytest.approx(20.0)


def test_an_abandoned_view_at_40_percent() -> None:
    # GIVEN playback reaching 40 % (12 s) and then the tab is closed: no pause, no ended
    events = [ev("impression", 0), ev("play", 1, position=0.0)]
    events += [progress(p, 1 + p * 0.3) for p in (10, 20, 30, 40)]
    s = recipient_stats("r1", events, DURATION)
    # THEN the last known position bounds the watch time
    assert (s.played, s.max_progress, s.completed, s.views) == (True, 40, False, 1)
    assert s.watch_time == pytest.approx(12.0)


def test_ended_without_a_pause_closes_the_span() -> None:
    events = [ev("play", 0, position=0.0), progress(50, 15), ev("ended", 30)]
    s = recipient_stats("r1", events, DURATION)
    assert s.watch_time == pytest.approx(DURATION)  # ended without a position: the end
    assert s.completed


def test_a_click_without_play() -> None:
    events = [ev("impression", 0), ev("cta_click", 4)]
    s = recipient_stats("r1", events, DURATION)
    assert (s.opened, s.played, s.clicked, s.completed) == (True, False, True, False)
    assert (s.max_progress, s.views, s.watch_time) == (0, 0, 0.0)


def test_no_events() -> None:
    s = recipient_stats("r1", [], DURATION)
    assert (s.opened, s.played, s.clicked, s.views, s.max_progress) == (False, False, False, 0, 0)
    assert s.watch_time == 0.0
    assert s.last_seen is None


def test_positions_beyond_the_duration_are_clamped() -> None:
    events = [
        ev("play", 0, position=0.0),
        ev("pause", 10, position=9_000.0),
        ev("play", 11, position=500.0),
        ev("pause", 12, position=600.0),
    ]
    s = recipient_stats("r1", events, DURATION)
    assert s.watch_time == pytest.approx(DURATION)


def test_a_lost_play_beacon_is_inferred_from_progress() -> None:
    events = [ev("impression", 0), progress(10, 4), progress(20, 7), ev("pause", 8, position=7.5)]
    s = recipient_stats("r1", events, DURATION)
    assert (s.played, s.views, s.max_progress) == (True, 1, 20)
    assert s.watch_time == pytest.approx(7.5 - 3.0)  # from the first proof of playback


def test_a_double_play_closes_the_first_span_at_the_last_position() -> None:
    events = [
        ev("play", 0, position=0.0),
        progress(20, 6),
        ev("play", 20, position=6.0),  # the pause beacon was lost
        ev("pause", 24, position=10.0),
    ]
    s = recipient_stats("r1", events, DURATION)
    assert s.watch_time == pytest.approx(6 + 4)


def test_events_of_other_recipients_are_ignored() -> None:
    s = recipient_stats("r1", full_view("r2"), DURATION)
    assert not s.opened


def test_percent() -> None:
    assert [percent(r) for r in (0, 0.5, 2 / 3, 1, 0.125)] == [
        "0%",
        "50%",
        "66.7%",
        "100%",
        "12.5%",
    ]


def campaign_events() -> list[Event]:
    events: list[Event] = []
    # r1: no events at all
    events += [ev("impression", 0, "r2")]  # r2: opened only
    events += [ev("impression", 0, "r3"), ev("play", 1, "r3", position=0.0)]
    events += [progress(10, 4, "r3"), progress(20, 7, "r3"), ev("pause", 8, "r3", position=7.0)]
    events += [ev("impression", 0, "r4"), ev("play", 1, "r4", position=0.0)]
    events += [progress(p, 1 + p * 0.3, "r4") for p in range(10, 61, 10)]  # tab closed at 60 %
    events += [*full_view("r5"), ev("cta_click", 33, "r5")]
    events += [ev("impression", 0, "r6"), ev("cta_click", 2, "r6")]  # clicked, never played
    # noise: a recipient without a page, and another campaign's events
    events += [*full_view("ghost"), ev("cta_click", 40, "ghost")]
    events += [ev("cta_click", 1, "r1", campaign_id="other"), ev("play", 1, "r2", campaign_id="x")]
    return events


def test_campaign_funnel_and_retention() -> None:
    pages = [page(f"r{i}") for i in range(1, 7)]
    report = campaign_report(CAMPAIGN, pages, campaign_events(), now=1234.5)

    assert report.campaign_id == CAMPAIGN
    assert report.sent == 6
    assert report.generated_at == 1234.5
    assert [s.model_dump() for s in report.funnel] == [
        {"step": "sent", "count": 6, "rate": 1.0},
        {"step": "opened", "count": 5, "rate": 5 / 6},
        {"step": "played", "count": 3, "rate": 0.5},
        {"step": "25%", "count": 2, "rate": 2 / 6},
        {"step": "50%", "count": 2, "rate": 2 / 6},
        {"step": "75%", "count": 1, "rate": 1 / 6},
        {"step": "100%", "count": 1, "rate": 1 / 6},
        {"step": "clicked", "count": 2, "rate": 2 / 6},
    ]
    assert [s.step for s in report.funnel] == list(FUNNEL_STEPS)
    assert report.step("played").count == 3

    # retention among the 3 who played (max progress 20, 60, 100)
    assert [p.percent for p in report.retention] == list(range(0, 101, 10))
    third, two_thirds = pytest.approx(1 / 3), pytest.approx(2 / 3)
    assert [p.share for p in report.retention] == [
        1.0, 1.0, 1.0, two_thirds, two_thirds, two_thirds, two_thirds,
        third, third, third, third,
    ]  # fmt: skip

    by_id = {s.recipient_id: s for s in report.recipients}
    assert list(by_id) == ["r1", "r2", "r3", "r4", "r5", "r6"]  # every page, in page order
    assert by_id["r1"].opened is False and by_id["r1"].last_seen is None
    assert by_id["r4"].max_progress == 60 and by_id["r4"].watch_time == pytest.approx(18.0)
    assert by_id["r5"].completed and by_id["r5"].clicked
    assert report.totals.views == 3
    assert report.totals.watch_time == pytest.approx(7 + 18 + 30)


def test_events_of_an_unknown_recipient_are_ignored() -> None:
    report = campaign_report(CAMPAIGN, [page("r1")], full_view("ghost"), now=0)
    assert [s.recipient_id for s in report.recipients] == ["r1"]
    assert [s.count for s in report.funnel] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert report.totals.views == 0


def test_recipients_with_no_events_and_nobody_played() -> None:
    report = campaign_report(CAMPAIGN, [page("a"), page("b")], [], now=0)
    assert report.sent == 2
    assert [s.rate for s in report.funnel] == [1.0] + [0.0] * 7
    assert [p.share for p in report.retention] == [0.0] * 11
    assert all(not s.opened for s in report.recipients)


def test_an_empty_campaign() -> None:
    report = campaign_report(CAMPAIGN, [], [], now=0)
    assert report.sent == 0
    assert all(s.count == 0 and s.rate == 0.0 for s in report.funnel)
    assert report.recipients == []


def test_the_latest_page_of_a_recipient_wins() -> None:
    events = [ev("play", 0, "r1", position=0.0), ev("pause", 20, "r1", position=20.0)]
    report = campaign_report(CAMPAIGN, [page("r1", 60.0), page("r1", 10.0)], events, now=0)
    assert report.sent == 1
    assert report.recipients[0].watch_time == pytest.approx(10.0)  # clamped to the new duration


def test_the_report_round_trips_through_json() -> None:
    report = campaign_report(CAMPAIGN, [page("r3"), page("r5")], campaign_events(), now=5.0)
    assert type(report).model_validate_json(report.model_dump_json()) == report
