"""Ingest (POST /events): verify the page's signed token, decide how this view may be tracked
(tracking/consent.py), put identified events on the relay queue toward the CRM connectors, and
store each event once. Anonymous events keep nothing of the person: no recipient, and a view id
the page drew at random."""

from __future__ import annotations

import secrets
import time

from pydantic import BaseModel

from chalicelib.backends import Backends
from chalicelib.errors import ForbiddenError
from chalicelib.landing.tokens import split, verify
from chalicelib.tracking.consent import ViewMode, view_mode
from chalicelib.tracking.events import ANONYMOUS, Event, EventBatch
from chalicelib.tracking.interactions import check_events, record_updates


class IngestResult(BaseModel):
    received: int
    stored: int
    duplicates: int


def ingest(
    b: Backends,
    batch: EventBatch,
    *,
    now: float | None = None,
    gpc: bool = False,
    dnt: bool = False,
) -> IngestResult:
    """Store a page's events as the view's tracking mode allows. ForbiddenError (nothing
    stored) for a forged or foreign token. `gpc`/`dnt`: the request's Sec-GPC and DNT."""
    from chalicelib.services import recipients, templates

    token, _ = split(batch.token)
    page = b.recipients.get_page(token) if token else None
    # The same answer for an unknown token and a bad signature: no oracle for valid tokens.
    if page is None or not verify(b.secret, batch.token, page.recipient_id, page.campaign_id):
        raise ForbiddenError("the page token is not valid", field="token")
    template = templates.materialize(b, templates.get_template(b, page.campaign_id)).template
    check_events(template, batch.events)  # DataError (400, the field named): nothing stored
    if updates := record_updates(template, batch.events):
        # The viewer's own choice changes their video (the stream plans from the record), so it
        # applies whatever the view's tracking mode: it is what they asked for, not a measure.
        recipients.choose(b, page.campaign_id, page.recipient_id, updates)
    known = b.recipients.get_recipient(page.campaign_id, page.recipient_id)
    answer = known.consent if known is not None else None
    if template.page.consent == "ask" and batch.consent is not None:
        if known is None or known.consent_source != "record":
            answer = batch.consent
            recipients.give_page_consent(b, page.campaign_id, page.recipient_id, batch.consent)
    elif batch.consent is False:
        answer = False  # a viewer's "no" always counts; a "yes" only where the page asks
    mode = view_mode(template, answer, gpc=gpc, dnt=dnt)
    if mode is ViewMode.off:
        return IngestResult(received=len(batch.events), stored=0, duplicates=0)
    received_at = time.time() if now is None else now
    if mode is not ViewMode.identified:  # anonymous, or asked and not (yet) accepted
        view = batch.view or secrets.token_urlsafe(12)
        anonymous = [
            Event(
                **e.model_dump(),
                campaign_id=page.campaign_id,
                recipient_id=ANONYMOUS,
                received_at=received_at,
                view=view,
            )
            for e in batch.events
        ]
        kept = b.events.add(anonymous)  # never queued: nothing of it may reach a CRM
        return IngestResult(
            received=len(anonymous),
            stored=len(kept),
            duplicates=len(anonymous) - len(kept),
        )
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
    stored = len(b.events.add(events))
    if stored < len(events):
        # The relay may have stored some of ours already (it took them off the queue between
        # our two writes): the copy it kept is this request's (the same receipt time), not a
        # duplicate beacon's.
        receipts = {
            e.key: e.received_at
            for e in b.events.for_recipient(page.campaign_id, page.recipient_id)
        }
        stored = len({e.key for e in events if receipts.get(e.key) == received_at})
    return IngestResult(received=len(events), stored=stored, duplicates=len(events) - stored)
