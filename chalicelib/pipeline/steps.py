"""The steps of a batch, shared by the local runner and (later) Step Functions:
plan (row → job or failure), render_recipient (job → result), finalize (results → summary)."""

from __future__ import annotations

import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chalicelib.data.mapping import FieldMapping, apply_mapping, recipient_id
from chalicelib.data.readers import Row
from chalicelib.errors import ReelError
from chalicelib.pipeline.jobs import RecipientJob, RecipientResult, Status
from chalicelib.ports import AssetFetcher, BlobStore, SpeechSynth
from chalicelib.render.cache import SegmentCache, file_digest
from chalicelib.render.config import DEFAULT, RenderConfig
from chalicelib.render.engine import ProgressFn, cache_context, render
from chalicelib.render.localize import localize
from chalicelib.render.segments import plan_key
from chalicelib.template.bind import bind
from chalicelib.template.library import LoadedTemplate
from chalicelib.tracking.consent import checked_consent

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def slug(rid: str) -> str:
    """A recipient id as a safe file name."""
    return _UNSAFE.sub("_", rid).strip("._")[:64] or "recipient"


def failed(rid: str, line: int, exc: ReelError) -> RecipientResult:
    return RecipientResult(
        recipient_id=rid,
        line=line,
        status=Status.failed,
        reason=str(exc.problems[0]) if len(exc.problems) == 1 else exc.message,
        code=exc.code,
        field=exc.field or None,
    )


def internal_reason(exc: BaseException) -> str:
    """Why a job failed that crashed (its worker died, a bug): not the recipient's doing."""
    return f"internal error: {type(exc).__name__}: {exc}"


def internal_error(
    rid: str, line: int, reason: str | BaseException, *, code: str = "internal_error"
) -> RecipientResult:
    """A recipient whose render crashed (its worker died, a bug): it alone fails, saying why."""
    if isinstance(reason, BaseException):
        reason = internal_reason(reason)
    return RecipientResult(
        recipient_id=rid, line=line, status=Status.failed, reason=reason[:2000], code=code
    )


def plan_recipient(
    lt: LoadedTemplate,
    mapping: FieldMapping | None,
    row: Row,
    *,
    preview: bool = False,
    named: bool = True,
    fetcher: AssetFetcher | None = None,
    config: RenderConfig = DEFAULT,
) -> RecipientJob | RecipientResult:
    """Map and bind one source row; a bad row becomes a failed result naming field and reason."""
    fallback = f"line-{row.line}"
    if row.fields is None:
        assert row.error is not None
        return failed(fallback, row.line, row.error)
    rid = recipient_id(mapping, row.fields, fallback)
    try:
        record = apply_mapping(mapping, row.fields)
        return make_job(
            lt, record, rid, row.line, preview=preview, named=named, fetcher=fetcher, config=config
        )
    except ReelError as exc:
        return failed(rid, row.line, exc)


def make_job(
    lt: LoadedTemplate,
    record: dict[str, Any],
    rid: str,
    line: int,
    *,
    preview: bool = False,
    named: bool = True,
    fetcher: AssetFetcher | None = None,
    config: RenderConfig = DEFAULT,
) -> RecipientJob:
    """Bind a record (template variables) into a job; DataError names every bad field,
    AssetError an asset refused (a URL that cannot be fetched, a file not of its kind).

    Outputs are named by a hash of the plan; `named` prefixes the recipient id for people
    browsing a folder (`reel batch`). Media behind URLs are not named: no personal data in URLs.
    """
    consent = checked_consent(record)  # not a variable: it rides beside the plan
    # URLs from data are fetched (and every media file checked) here, before the key: the
    # key digests the fetched bytes, and a refused asset fails this recipient alone.
    if lt.template.experiments:  # sticky: a hash of (experiment, recipient), never the data's
        from chalicelib.template.experiments import ASSIGNED, assign_all

        record = {**record, ASSIGNED: assign_all(lt.template, rid)}
    plan = localize(bind(lt, record), fetcher)
    key = plan_key(plan, file_digest, cache_context(config), preview, config.speech)[:32]
    name = f"{slug(rid)}-{key[:16]}" if named else key
    return RecipientJob(
        recipient_id=rid,
        line=line,
        plan=plan,
        output_key=f"videos/{name}.mp4",
        poster_key=f"posters/{name}.jpg",
        preview=preview,
        consent=consent,
    )


def render_recipient(
    job: RecipientJob,
    outputs: BlobStore,
    cache: SegmentCache,
    config: RenderConfig = DEFAULT,
    progress: ProgressFn | None = None,
    speech: SpeechSynth | None = None,
) -> RecipientResult:
    """Render one job through the segment cache and store its video and poster.

    Idempotent: when the output already exists, nothing is rendered (status `cached`).
    `progress` hears of each step of the render (`engine.render`'s).
    """
    if outputs.exists(job.output_key):  # written last: its presence means the job is done
        return _done(job, outputs, Status.cached)
    started = time.monotonic()
    try:
        # The lease holds every cached segment this render uses until its video is stored.
        with (
            cache.lease(),
            tempfile.TemporaryDirectory(prefix="reel-job-", dir=config.scratch()) as tmp,
        ):
            video, poster = Path(tmp) / "video.mp4", Path(tmp) / "poster.jpg"
            result = render(
                job.plan,
                video,
                poster=poster,
                preview=job.preview,
                cache=cache,
                progress=progress,
                config=config,
                speech=speech,
            )
            # Poster first: the video's presence is what marks the job done.
            outputs.put_file(job.poster_key, poster)
            outputs.put_file(job.output_key, video)
    except ReelError as exc:
        return failed(job.recipient_id, job.line, exc)
    return _done(
        job,
        outputs,
        Status.rendered,
        segments=result.segments,
        segments_cached=result.segments_cached,
        seconds=round(time.monotonic() - started, 3),
    )


def _done(job: RecipientJob, outputs: BlobStore, status: Status, **extra: Any) -> RecipientResult:
    return RecipientResult(
        recipient_id=job.recipient_id,
        line=job.line,
        status=status,
        output=outputs.url(job.output_key),
        poster=outputs.url(job.poster_key),
        output_key=job.output_key,
        poster_key=job.poster_key,
        fallbacks=job.plan.fallbacks or None,
        **extra,
    )


def finalize(results: Iterable[RecipientResult]) -> dict[str, int]:
    """Counts by status (every status present, zero when none)."""
    counts = Counter(r.status.value for r in results)
    return {s.value: counts.get(s.value, 0) for s in Status}
