"""Single renders (POST /renders): check a record, queue it, render it, show where it is."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from chalicelib.backends import Backends
from chalicelib.data.mapping import recipient_id
from chalicelib.errors import NotFoundError, ReelError
from chalicelib.pipeline.jobs import JobState, RenderRecord, Status, Urls, new_id
from chalicelib.pipeline.steps import failed, make_job, render_recipient
from chalicelib.services.notices import notify_completion
from chalicelib.services.recipients import page_for, page_url, publish
from chalicelib.services.templates import get_template, materialize
from chalicelib.template.model import Strict


class RenderRequest(Strict):
    template_id: str
    version: str | None = Field(None, description="a registered version; default: the latest")
    data: dict[str, Any] = Field(description="the recipient's record: template variables")
    preview: bool = False


def create_render(b: Backends, req: RenderRequest) -> RenderRecord:
    """Check the record against the template (DataError names each bad field) and queue it."""
    template = get_template(b, req.template_id, req.version)
    lt = materialize(b, template)
    rid = recipient_id(None, req.data, "api")
    job = make_job(
        lt, req.data, rid, 0, preview=req.preview, named=False, fetcher=b.fetcher, config=b.render
    )
    page_for(lt, job, template.id)  # its CTA and title bind too, or the request is refused now
    now = time.time()
    record = RenderRecord(
        id=new_id("r"),
        template_id=template.id,
        version=template.version,
        data=req.data,
        state=JobState.queued,
        created_at=now,
        updated_at=now,
        output_key=job.output_key,
        poster_key=job.poster_key,
        preview=req.preview,
    )
    b.jobs.create_render(record)
    b.orchestrator.start_render(record.id)
    return record


def get_render(b: Backends, render_id: str) -> RenderRecord:
    record = b.jobs.get_render(render_id)
    if record is None:
        raise NotFoundError(f"no render {render_id!r}", field="render_id")
    return record


def run_render(b: Backends, render_id: str) -> RenderRecord:
    """Render a queued RenderRecord (idempotent: a finished render is returned as it is)."""
    record = get_render(b, render_id)
    if record.state in (JobState.done, JobState.failed):
        return record
    # A rerun of this step (a resumed server, a retried Lambda) may find it running already.
    running = (JobState.queued, JobState.running)
    if not b.jobs.set_state("render", render_id, JobState.running, expect=running):
        return get_render(b, render_id)  # finished by another run meanwhile: nothing to do
    lt = materialize(b, get_template(b, record.template_id, record.version))
    rid = recipient_id(None, record.data, "api")
    token = None
    try:
        job = make_job(
            lt,
            record.data,
            rid,
            0,
            preview=record.preview,
            named=False,
            fetcher=b.fetcher,
            config=b.render,
        )
        keys = {"output_key": record.output_key, "poster_key": record.poster_key}
        job = job.model_copy(update=keys)

        def step(_stage: str, done: int, total: int) -> None:
            share = round(done / total, 3)
            b.jobs.set_state("render", render_id, JobState.running, expect=running, progress=share)

        result = render_recipient(job, b.blobs, b.cache, b.render, step, speech=b.speech)
        if result.status != Status.failed:
            token = publish(b, lt, job, record.template_id)
            result = result.model_copy(update={"page": page_url(b, token)})
    except ReelError as exc:  # the template changed under a stored record, an asset vanished…
        result = failed(rid, 0, exc)
    state = JobState.failed if result.status == Status.failed else JobState.done
    closed = b.jobs.set_state(
        "render",
        render_id,
        state,
        expect=running,
        result=result.model_dump(),
        page_token=token,
        updated_at=time.time(),
    )
    done = get_render(b, render_id)
    if closed:  # once, however often this step runs
        urls = render_urls(b, done).model_dump()
        notify_completion(b, "render", done.id, done.template_id, state.value, rid, urls=urls)
    return done


def render_urls(b: Backends, record: RenderRecord) -> Urls:
    page = page_url(b, record.page_token) if record.page_token else None
    return Urls(
        video=b.blobs.url(record.output_key), poster=b.blobs.url(record.poster_key), page=page
    )
