"""Campaign analytics computed from the player's events: per-recipient stats, funnel, retention.

Pure functions of (pages, events, now); no I/O. The definitions, precisely:

Ordering. A recipient's events are sorted by the client's `ts`, then the server's
`received_at`, then the event id (beacons arrive out of order; duplicates are removed upstream).

Evidence. Every event is sent by the landing page, so any event means the page was *opened*
(a lost impression beacon does not hide an open). A play, replay, progress or ended event is
evidence of playback, so any of them means the recipient *played*. Hence the funnel never
increases from one step to the next until `clicked`.

Max progress. The highest `progress` beacon (10, 20, …, 100), with `ended` counting as 100;
clamped to 0..100 and rounded down to a step of 10. Seeking back never lowers it and a replay
never raises it beyond 100. *completed* means max progress == 100.

Views. Plays from the start: 1 for the first playback (if any) plus one per `replay` (a replay
follows an `ended`, so it implies a first view even if that play beacon was lost).

Watch time. Seconds of the video actually played: the sum over *playing spans* of
(stop position − start position), each position clamped to [0, duration] and a span that would
be negative counting 0. A span starts at `play` (its position), at `replay` (its position,
else 0), at a `seek` while playing (its `position`) or, when a play beacon was lost, at a
`progress` beacon seen while not playing. A span stops at `pause` (its position), `ended` (its
position, else the duration), a `seek` (its `seek_from`), a new play/replay while playing (a
lost pause), or — when the tab was closed while playing — at the last known position. Where an
event lacks the position it needs, the last known position stands in: that of the latest event
carrying one (a progress beacon without one stands at progress % × duration; at the very start,
0). Time paused, or skipped by a seek, never counts; a straight full view counts the duration.

Funnel. sent (the campaign's pages), opened, played, 25 %, 50 %, 75 %, 100 % (recipients whose
max progress is at least that share: with 10 % beacons, "25 %" means the 30 % beacon), clicked;
each with its rate = count / sent (0 when nothing was sent).

Retention. 11 points at 0, 10, …, 100 %: among the recipients who played, the share whose max
progress is at least that point. The 0 % point is 1.0 when anyone played; every point is 0.0
when nobody did.

Recipients. One per page of the campaign (the latest page of a recipient wins), with or without
events; events of other campaigns, or of recipients without a page, are ignored. Only recipients
who consent to identified tracking get a row (`consenting`); the others still count as sent.

Anonymous views. Events kept without a recipient (tracking/consent.py) are grouped by their
view (one page load) and each view counts in the funnel like a recipient: opened, played, 25 %…
So the funnel's steps after `sent` count recipients and anonymous views together; rates are
still count / sent, and may pass 1 when a page is opened anonymously more than once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime

from pydantic import Field

from chalicelib.landing.pages import Page
from chalicelib.template.model import Strict
from chalicelib.tracking.events import ANONYMOUS, Event, EventKind
from chalicelib.tracking.reports import ExperimentReport, InteractionStats, SceneDropOff

RETENTION_POINTS = tuple(range(0, 101, 10))
FUNNEL_THRESHOLDS = (25, 50, 75, 100)
FUNNEL_STEPS = ("sent", "opened", "played", "25%", "50%", "75%", "100%", "clicked")

_PLAYBACK = frozenset({EventKind.play, EventKind.replay, EventKind.progress, EventKind.ended})


class RecipientStats(Strict):
    """How one recipient watched their video."""

    recipient_id: str
    opened: bool = Field(description="the page was shown (any event)")
    played: bool = Field(description="playback started (play, replay, progress or ended)")
    max_progress: int = Field(ge=0, le=100, description="highest progress step reached, %")
    completed: bool = Field(description="max_progress == 100")
    clicked: bool = Field(description="any cta_click")
    watch_time: float = Field(ge=0, description="seconds of the video actually played")
    views: int = Field(ge=0, description="plays from the start: first play + replays")
    last_seen: float | None = Field(None, description="latest received_at, epoch seconds")


class FunnelStep(Strict):
    step: str
    count: int = Field(ge=0)
    rate: float = Field(ge=0, description="count / sent")


class RetentionPoint(Strict):
    percent: int = Field(ge=0, le=100, description="progress of the video, %")
    share: float = Field(ge=0, le=1, description="share of the recipients who played")


class Totals(Strict):
    views: int = Field(ge=0)
    watch_time: float = Field(ge=0, description="seconds, summed over recipients")


class CampaignReport(Strict):
    """The analytics of one campaign at `generated_at`."""

    campaign_id: str
    sent: int = Field(ge=0)
    funnel: list[FunnelStep]
    retention: list[RetentionPoint]
    recipients: list[RecipientStats]
    totals: Totals
    generated_at: float = Field(description="epoch seconds")
    anonymous_views: int = Field(0, ge=0, description="views tracked without the recipient")
    period_start: float | None = Field(
        None, description="the oldest event counted (epoch seconds); None: no events"
    )
    events_kept_days: int | None = Field(
        None, description="the campaign's event retention: older events are gone"
    )
    interactions: list[InteractionStats] = Field(
        default_factory=list, description="per interaction: click-through, choices' split"
    )
    scenes: list[SceneDropOff] = Field(default_factory=list, description="where viewers stop")
    experiments: list[ExperimentReport] = Field(default_factory=list)

    def step(self, name: str) -> FunnelStep:
        """The funnel step called `name` (one of FUNNEL_STEPS)."""
        for s in self.funnel:
            if s.step == name:
                return s
        raise KeyError(name)


STEP_LABELS = {
    "sent": "Sent",
    "opened": "Opened",
    "played": "Played",
    "25%": "Watched 25%",
    "50%": "Watched 50%",
    "75%": "Watched 75%",
    "100%": "Completed",
    "clicked": "Clicked",
}


# ── formatting shared by the views (charts, dashboard, terminal report) ────────────────────


def step_label(step: str) -> str:
    """A funnel step's name for people: '25%' → 'Watched 25%'."""
    return STEP_LABELS.get(step, step)


def percent(rate: float) -> str:
    """A rate as a short percentage: 0.5 → '50%', 2/3 → '66.7%'."""
    text = f"{rate * 100:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def clock(seconds: float) -> str:
    """A duration as m:ss, or h:mm:ss from an hour: 75.6 → '1:16'."""
    whole = round(max(seconds, 0.0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def iso_utc(ts: float | None) -> str:
    """Epoch seconds as ISO 8601 UTC ('2024-05-01T12:00:00Z'); '' for None."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ── computation ─────────────────────────────────────────────────────────────────────────────


def _order(e: Event) -> tuple[float, float, str]:
    return (e.ts, e.received_at, e.id)


class _Playhead:
    """Accumulates playing spans while walking a recipient's ordered events."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.total = 0.0
        self.span_start: float | None = None  # None while not playing
        self.position: float | None = None  # the last known playhead position

    @property
    def playing(self) -> bool:
        return self.span_start is not None

    def _clamp(self, x: float) -> float:
        return min(max(x, 0.0), self.duration)

    def see(self, at: float | None) -> None:
        if at is not None:
            self.position = at

    def start(self, at: float | None) -> None:
        if self.playing:
            self.stop(None)  # a play without a pause before it: the lost pause was here
        begin = at if at is not None else (self.position if self.position is not None else 0.0)
        self.span_start = begin
        self.position = begin

    def stop(self, at: float | None) -> None:
        if self.span_start is not None:
            end = at if at is not None else self.position
            if end is not None:
                self.total += max(0.0, self._clamp(end) - self._clamp(self.span_start))
            self.span_start = None
        self.see(at)


def _watch_time(ordered: Sequence[Event], duration: float) -> float:
    head = _Playhead(duration)
    for e in ordered:
        if e.kind is EventKind.play:
            head.start(e.position)
        elif e.kind is EventKind.replay:
            head.start(e.position if e.position is not None else 0.0)
        elif e.kind is EventKind.progress:
            at = e.position
            if at is None and e.progress is not None:
                at = e.progress / 100 * duration
            if head.playing:
                head.see(at)
            else:
                head.start(at)  # the play beacon was lost: playback is proven from here
        elif e.kind is EventKind.pause:
            head.stop(e.position)
        elif e.kind is EventKind.ended:
            head.stop(e.position if e.position is not None else duration)
        elif e.kind is EventKind.seek:
            if head.playing:
                head.stop(e.seek_from)
                head.start(e.position)
            else:
                head.see(e.position)
        else:
            head.see(e.position)
    head.stop(None)  # the tab was closed while playing: the last known position bounds it
    return head.total


def _step(progress: float) -> int:
    if not math.isfinite(progress):
        return 0
    return int(min(max(progress, 0.0), 100.0)) // 10 * 10


def recipient_stats(recipient_id: str, events: Iterable[Event], duration: float) -> RecipientStats:
    """One recipient's stats from their events (others' events are ignored), in any order."""
    ordered = sorted((e for e in events if e.recipient_id == recipient_id), key=_order)
    length = duration if math.isfinite(duration) and duration > 0 else 0.0
    kinds = {e.kind for e in ordered}
    reached = [e.progress for e in ordered if e.kind is EventKind.progress and e.progress]
    if EventKind.ended in kinds:
        reached.append(100)
    max_progress = _step(max(reached, default=0))
    played = bool(kinds & _PLAYBACK)
    replays = sum(1 for e in ordered if e.kind is EventKind.replay)
    return RecipientStats(
        recipient_id=recipient_id,
        opened=bool(ordered),
        played=played,
        max_progress=max_progress,
        completed=max_progress == 100,
        clicked=EventKind.cta_click in kinds,
        watch_time=round(_watch_time(ordered, length), 3),
        # A replay follows an `ended`, so it implies a first view even if that play was lost.
        views=(1 + replays) if played else 0,
        last_seen=max((e.received_at for e in ordered), default=None),
    )


def campaign_report(
    campaign_id: str,
    pages: Iterable[Page],
    events: Iterable[Event],
    now: float,
    *,
    consenting: Collection[str] | None = None,
    events_kept_days: int | None = None,
) -> CampaignReport:
    """The campaign's funnel, retention and per-recipient stats; `pages` from
    `JobStore.campaign_pages`. Events of other campaigns or of recipients without a page are
    ignored; a page without events still counts as sent. `consenting`: the recipients who get a
    row (None: all)."""
    by_recipient: dict[str, Page] = {}
    for page in pages:
        if page.campaign_id == campaign_id:
            by_recipient[page.recipient_id] = page  # the latest page wins, in first-seen order
    grouped: dict[str, list[Event]] = defaultdict(list)
    views: dict[str, list[Event]] = defaultdict(list)
    oldest: float | None = None
    for e in events:
        if e.campaign_id != campaign_id:
            continue
        if e.recipient_id == ANONYMOUS:
            views[e.view or e.id].append(e)
        elif e.recipient_id in by_recipient:
            grouped[e.recipient_id].append(e)
        else:
            continue
        oldest = e.received_at if oldest is None else min(oldest, e.received_at)

    stats = [
        recipient_stats(rid, grouped.get(rid, []), page.duration)
        for rid, page in by_recipient.items()
    ]
    longest = max((p.duration for p in by_recipient.values()), default=0.0)
    anonymous = [recipient_stats(ANONYMOUS, found, longest) for found in views.values()]
    sent = len(stats)
    counted = stats + anonymous

    def rate(n: int) -> float:
        return n / sent if sent else 0.0

    counts = [
        ("sent", sent),
        ("opened", sum(s.opened for s in counted)),
        ("played", sum(s.played for s in counted)),
        *((f"{t}%", sum(s.max_progress >= t for s in counted)) for t in FUNNEL_THRESHOLDS),
        ("clicked", sum(s.clicked for s in counted)),
    ]
    played = [s for s in counted if s.played]
    retention = [
        RetentionPoint(
            percent=p,
            share=(sum(s.max_progress >= p for s in played) / len(played)) if played else 0.0,
        )
        for p in RETENTION_POINTS
    ]
    shown = [s for s in stats if consenting is None or s.recipient_id in consenting]
    return CampaignReport(
        campaign_id=campaign_id,
        sent=sent,
        funnel=[FunnelStep(step=name, count=n, rate=rate(n)) for name, n in counts],
        retention=retention,
        recipients=shown,
        totals=Totals(
            views=sum(s.views for s in counted),
            watch_time=round(sum(s.watch_time for s in counted), 3),
        ),
        generated_at=now,
        anonymous_views=len(anonymous),
        period_start=oldest,
        events_kept_days=events_kept_days,
    )
