"""The player's events: what `POST /events` accepts, and what the EventStore keeps."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

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
    interaction_shown = "interaction_shown"  # an interaction (`interaction`) appeared
    interaction_click = "interaction_click"  # its button or hotspot was clicked
    choice = "choice"  # an option (`option`) of a choice (`interaction`) was chosen
    form_submit = "form_submit"  # a form (`interaction`) was sent with its `answers`


INTERACTIVE_KINDS = frozenset(
    {
        EventKind.interaction_shown,
        EventKind.interaction_click,
        EventKind.choice,
        EventKind.form_submit,
    }
)
MAX_ANSWER = 5000  # characters of one answer (a form field's max_length is checked on the page)
Answer = (
    Annotated[str, Field(max_length=MAX_ANSWER)]
    | Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)]
)


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
    interaction: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=100, description="its id"
    )
    option: str | None = Field(None, min_length=1, max_length=200, description="choice: value")
    answers: dict[str, Answer] | None = Field(
        None, max_length=20, description="form_submit: field name → answer (a list: multiple)"
    )

    @model_validator(mode="after")
    def _progress_kind(self) -> ClientEvent:
        if (self.kind is EventKind.progress) != (self.progress is not None):
            raise ValueError("`progress` is given with, and only with, kind 'progress'")
        if (self.kind in INTERACTIVE_KINDS) != (self.interaction is not None):
            raise ValueError("`interaction` is given with, and only with, an interaction's kinds")
        if (self.kind is EventKind.choice) != (self.option is not None):
            raise ValueError("`option` is given with, and only with, kind 'choice'")
        if (self.kind is EventKind.form_submit) != (self.answers is not None):
            raise ValueError("`answers` is given with, and only with, kind 'form_submit'")
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
    interaction: str | None = None
    option: str | None = None
    answers: dict[str, str | list[str]] | None = None
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
