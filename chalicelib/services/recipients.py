"""Recipients and their landing pages: publish a render, replace a record, find a page."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from pydantic import Field

from chalicelib.backends import Backends
from chalicelib.errors import DataError, GoneError, NotFoundError, TemplateError
from chalicelib.landing.pages import Page, make_page
from chalicelib.pipeline.jobs import RecipientData, RecipientJob
from chalicelib.pipeline.steps import make_job
from chalicelib.services.templates import get_template, materialize
from chalicelib.template.bind import bind, bind_values
from chalicelib.template.interactive import PageChapter, PageInteraction, resolve
from chalicelib.template.library import LoadedTemplate, resolve_asset
from chalicelib.template.model import FONT_TYPES, LOGO_TYPES, Strict, Theme


class RecipientDataRequest(Strict):
    """PUT /recipients/{id}/data."""

    campaign_id: str = Field(description="the campaign (its template id)")
    data: dict[str, Any] = Field(description="the recipient's new record: template variables")


def page_url(b: Backends, token: str) -> str:
    """Where a recipient's page is: the API's public URL (no personal data in it)."""
    return f"{b.public_url.rstrip('/')}/v/{token}"


def page_for(lt: LoadedTemplate, job: RecipientJob, campaign_id: str) -> Page:
    """The landing page of a job (a new token): its title, CTA and media keys."""
    return make_page(
        lt,
        job.plan,
        campaign_id=campaign_id,
        recipient_id=job.recipient_id,
        video_key=job.output_key,
        poster_key=job.poster_key,
    )


def publish(b: Backends, lt: LoadedTemplate, job: RecipientJob, campaign_id: str) -> str:
    """Give a rendered recipient a landing page (a new token); the campaign is the template.
    Their record becomes their current one (what their stream shows). The same render published
    again (a step rerun after a crash between publishing and recording) keeps its page."""
    known = b.recipients.get_recipient(campaign_id, job.recipient_id)
    current = b.recipients.get_page(known.token) if known else None
    if current is not None and current.video_key == job.output_key:
        token = current.token
    else:
        if job.plan.voices:  # the spoken lines (the render stored them) join the captions
            from chalicelib.render.voice import speak

            spoken = speak(job.plan, b.speech, b.cache.store, b.scratch / "clips")
            job = job.model_copy(update={"plan": spoken})
        page = page_for(lt, job, campaign_id)
        b.recipients.put_page(page)
        token = page.token
    remember(b, campaign_id, job.recipient_id, dict(job.plan.record), token, consent=job.consent)
    return token


def data_hash(data: dict[str, Any]) -> str:
    """A short content hash of a record (canonical JSON)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def remember(
    b: Backends,
    campaign_id: str,
    rid: str,
    data: dict[str, Any],
    token: str,
    *,
    consent: bool | None = None,
) -> RecipientData:
    """Store a recipient's current record. The record's consent answer wins; without one, an
    answer given on the page before stays."""
    now = time.time()
    answer: dict[str, Any] = {}
    if consent is not None:
        answer = {"consent": consent, "consent_source": "record", "consent_at": now}
    else:
        known = b.recipients.get_recipient(campaign_id, rid)
        if known is not None and known.consent_source == "page":
            answer = {
                "consent": known.consent,
                "consent_source": "page",
                "consent_at": known.consent_at,
            }
    record = RecipientData(
        campaign_id=campaign_id,
        recipient_id=rid,
        data=data,
        data_hash=data_hash(data),
        token=token,
        updated_at=now,
        **answer,
    )
    b.recipients.put_recipient(record)
    return record


def give_page_consent(b: Backends, campaign_id: str, rid: str, answer: bool) -> None:
    """Keep the answer a viewer gave on the page's banner (a recorded answer is not
    overridden: the page does not ask those who have one)."""
    known = b.recipients.get_recipient(campaign_id, rid)
    if known is None or known.consent_source == "record" or known.consent == answer:
        return
    update = {"consent": answer, "consent_source": "page", "consent_at": time.time()}
    b.recipients.put_recipient(known.model_copy(update=update))


def set_recipient_data(
    b: Backends, campaign_id: str, rid: str, data: dict[str, Any]
) -> RecipientData:
    """Replace a recipient's record (PUT /recipients/{id}/data, CRM hooks). It is checked
    against the template first (DataError names each bad field). A recipient never seen gets a
    landing page; one already known keeps theirs: the same link now shows the new data."""
    template = get_template(b, campaign_id)
    lt = materialize(b, template)
    job = make_job(lt, data, rid, 0, named=False, fetcher=b.fetcher, config=b.render)
    page = page_for(lt, job, campaign_id)  # its texts bind too, or the data is refused now
    known = b.recipients.get_recipient(campaign_id, rid)
    if known is None:
        b.recipients.put_page(page)
        token = page.token
    else:
        token = known.token
    return remember(b, campaign_id, rid, dict(job.plan.record), token, consent=job.consent)


def choose(
    b: Backends, campaign_id: str, rid: str, updates: dict[str, str]
) -> RecipientData | None:
    """A viewer's choice on their page (a choice interaction, a `set` action): the record with
    those variables changed goes through `set_recipient_data`, as `PUT /recipients/{id}/data`
    does, so the next personal chunks of their stream are planned from it. A consent answer
    the record gave stays. None when the recipient has no record (erased)."""
    known = b.recipients.get_recipient(campaign_id, rid)
    if known is None:
        return None
    if all(known.data.get(k) == v for k, v in updates.items()):
        return known  # the same choice again (a retried beacon): nothing changes
    record = set_recipient_data(b, campaign_id, rid, {**known.data, **updates})
    if known.consent_source == "record" and record.consent_source != "record":
        answer = {
            "consent": known.consent,
            "consent_source": known.consent_source,
            "consent_at": known.consent_at,
        }
        record = record.model_copy(update=answer)
        b.recipients.put_recipient(record)
    return record


def interactive(b: Backends, page: Page) -> tuple[list[PageInteraction], list[PageChapter]]:
    """The page's interactions and chapters for the recipient's current record (what their
    stream shows: a choice may have changed which scenes play, so when they appear); the
    page's own, made with its render, when the record is gone or no longer binds."""
    known = b.recipients.get_recipient(page.campaign_id, page.recipient_id)
    if known is None:
        return page.interactions, page.chapters
    lt = materialize(b, get_template(b, page.campaign_id))
    try:
        plan = bind(lt, known.data)
        return resolve(lt.template, plan, bind_values(lt, plan.record)[0])
    except (DataError, TemplateError):
        return page.interactions, page.chapters


def theme(b: Backends, token: str) -> Theme:
    """The page theme of the campaign behind a page (NotFoundError when it has none)."""
    page = get_page(b, token)
    found = materialize(b, get_template(b, page.campaign_id)).template.page.theme
    if found is None:
        raise NotFoundError("this campaign's page has no theme", field="token")
    return found


def theme_file(b: Backends, token: str, which: str) -> tuple[bytes, str]:
    """The theme's logo or font file (bytes, media type), from the campaign's bundle."""
    page = get_page(b, token)
    lt = materialize(b, get_template(b, page.campaign_id))
    found = lt.template.page.theme
    ref = getattr(found, which, None) if found is not None else None
    if ref is None:
        raise NotFoundError(f"this campaign's page theme has no {which}", field="token")
    kinds = LOGO_TYPES if which == "logo" else FONT_TYPES
    kind = kinds[ref[ref.rfind(".") :].lower()]
    return resolve_asset(lt.root, ref).read_bytes(), kind


def get_page(b: Backends, token: str) -> Page:
    page = b.recipients.get_page(token) if 10 <= len(token) <= 100 else None
    if page is None:
        if 10 <= len(token) <= 100 and b.recipients.erased(token):
            raise GoneError("this page was erased at its recipient's request", field="token")
        raise NotFoundError("no such page", field="token")
    return page
