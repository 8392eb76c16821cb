"""Streams: what a page token's personal HLS stream shows (its recipient's current record)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.backends import Backends
from chalicelib.errors import NotFoundError
from chalicelib.services.recipients import get_page
from chalicelib.services.templates import get_template, materialize
from chalicelib.template.plan import RenderPlan


@dataclass(frozen=True)
class StreamSource:
    """What a recipient's stream shows: their current record, in the campaign's latest
    template version. (campaign_id, version, data_hash) names the stream's content."""

    token: str
    campaign_id: str
    recipient_id: str
    version: str
    data_hash: str
    data: dict[str, Any]


def stream_source(b: Backends, token: str) -> StreamSource:
    """The stream behind a page token (three lookups, no rendering); NotFoundError when the
    page is unknown or its recipient has no current record."""
    page = get_page(b, token)
    current = b.recipients.get_recipient(page.campaign_id, page.recipient_id)
    if current is None:
        raise NotFoundError("this page has no stream", field="token")
    template = get_template(b, page.campaign_id)
    return StreamSource(
        token=token,
        campaign_id=page.campaign_id,
        recipient_id=page.recipient_id,
        version=template.version,
        data_hash=current.data_hash,
        data=dict(current.data),
    )


def stream_plan(b: Backends, campaign_id: str, version: str, data: dict[str, Any]) -> RenderPlan:
    """Bind a stream's record into its localized render plan: its URLs from data fetched, its
    media checked (milliseconds once fetched: no rendering)."""
    from chalicelib.render.localize import localize
    from chalicelib.render.voice import speak
    from chalicelib.template.bind import bind

    lt = materialize(b, get_template(b, campaign_id, version))
    plan = localize(bind(lt, data), b.fetcher)
    # Voice lines spoken (or found in the cache): the audio rendition carries them.
    return speak(plan, b.speech, b.cache.store, b.scratch / "clips") if plan.voices else plan
