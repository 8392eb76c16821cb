"""Ingest (POST /events): verify the page's signed token, put the events on the relay queue
toward the CRM connectors, and store each event once."""

from __future__ import annotations

import time

from pydantic import BaseModel

from chalicelib.backends import Backends
from chalicelib.errors import ForbiddenError
from chalicelib.landing.tokens import split, verify
from chalicelib.tracking.events import Event, EventBatch


class IngestResult(BaseModel):
    received: int
    stored: int
    duplicates: int


def ingest(b: Backends, batch: EventBatch, *, now: float | None = None) -> IngestResult:
    """Store a page's events. ForbiddenError (nothing stored) for a forged or foreign token."""
    token, _ = split(batch.token)
    page = b.recipients.get_page(token) if token else None
    # The same answer for an unknown token and a bad signature: no oracle for valid tokens.
    if page is None or not verify(b.secret, batch.token, page.recipient_id, page.campaign_id):
        raise ForbiddenError("the page token is not valid", field="token")
    received_at = time.time() if now is None else now
    events = [
        Event(
            **e.model_dump(),
            campaign_id=page.campaign_id,
            recipient_id=page.recipient_id,
            received_at=received_at,
        )
        for e in batch.events
    ]
    # The queue first, then the store: whatever stops us between the two writes (a crash, a
    # failed write), no stored event misses the relay. The relay stores what it is handed if
    # it is not stored yet, and delivers each event × rule action once, so events sent again
    # (retried beacons) cost a queue message, never a second delivery.
    b.queue.put([{"type": "event", "event": e.model_dump(mode="json")} for e in events])
    stored = b.events.add(events)
    return IngestResult(
        received=len(events), stored=len(stored), duplicates=len(events) - len(stored)
    )
