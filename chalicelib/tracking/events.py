"""The player's events: what `POST /events` accepts, and what the EventStore keeps."""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import Field, model_validator

from chalicelib.template.model import Strict

MAX_EVENTS_PER_REQUEST = 50


class EventKind(StrEnum):
    impression = "impression"  # the page was shown
    play = "play"  # playback started (first time, or after a pause)
    progress = "progress"  # the viewer reached `progress` % (10, 20, …, 100) of the video
    pause = "pause"
    seek = "seek"  # jumped from `seek_from` to `position`
    ended = "ended"  # played to the end
    replay = "replay"  # started again from the beginning after `ended`
    cta_click = "cta_click"


EVENT_ID = r"^[A-Za-z0-9_-]{8,64}$"
ANONYMOUS = ""  # the recipient of an anonymous event: nobody


class ClientEvent(Strict):
    """One event as the page's script sends it."""

    id: str = Field(pattern=EVENT_ID, description="unique per event: duplicates are dropped")
    kind: EventKind
    ts: float = Field(ge=0, allow_inf_nan=False, description="client time, ms since the epoch")
    position: float | None = Field(
        None, ge=0, le=86_400, allow_inf_nan=False, description="seconds into the video"
    )
    progress: int | None = Field(None, ge=10, le=100, multiple_of=10, description="progress %")
    seek_from: float | None = Field(None, ge=0, le=86_400, allow_inf_nan=False)

    @model_validator(mode="after")
    def _progress_kind(self) -> ClientEvent:
        if (self.kind is EventKind.progress) != (self.progress is not None):
            raise ValueError("`progress` is given with, and only with, kind 'progress'")
        return self


class EventBatch(Strict):
    """The body of `POST /events`."""

    token: str = Field(min_length=10, max_length=200, description="the page's signed token")
    events: list[ClientEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)
    consent: bool | None = Field(
        None,
        description="the viewer's answer to the page's consent banner in this view (true: "
        "accepted; false: declined; absent: not asked or not answered)",
    )
    view: str | None = Field(
        None,
        pattern=EVENT_ID,
        description="random per page load: groups an anonymous view's events (nothing else)",
    )


class Event(Strict):
    """A stored event: the client's, plus whose it is and when the server received it."""

    id: str = Field(pattern=EVENT_ID)
    kind: EventKind
    ts: float
    position: float | None = None
    progress: int | None = None
    seek_from: float | None = None
    campaign_id: str
    recipient_id: str = Field(description="empty for an anonymous event")
    received_at: float
    view: str | None = Field(None, description="an anonymous event's view (random per load)")

    @property
    def anonymous(self) -> bool:
        return self.recipient_id == ANONYMOUS

    @property
    def key(self) -> str:
        """The deduplication key: an event id counts once per recipient (JSON: unambiguous
        whatever characters the ids hold)."""
        return json.dumps([self.campaign_id, self.recipient_id, self.id])
