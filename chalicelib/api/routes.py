"""The API's routes: templates, renders, batches, uploads, and (locally) the media files."""

from __future__ import annotations

import mimetypes
import re
from typing import TypeVar

from chalice.app import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from chalicelib import bootstrap
from chalicelib.adapters.failures import FailedInvocation
from chalicelib.api import ErrorDetail, handles_errors, parse_document, parse_model, require_key
from chalicelib.api.operations import BINARY, TEXT, Media, Operation, Param
from chalicelib.backends import Backends
from chalicelib.connectors.base import Delivery, DeliveryStatus
from chalicelib.errors import NotFoundError, RequestError
from chalicelib.pipeline.jobs import (
    BatchRecord,
    JobState,
    RecipientResult,
    RenderRecord,
    TemplateRecord,
    Urls,
    new_id,
)
from chalicelib.services import batches, renders, templates
from chalicelib.template.model import Strict

api = Blueprint(__name__)
Q = TypeVar("Q", bound=BaseModel)

MEDIA_FOLDERS = {"videos", "posters", "thumbnails"}
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.(csv|jsonl|ndjson)$")


# ── the bodies these routes answer, and their query strings (GET /openapi.json shows them) ──


class RenderView(Strict):
    """A render as the API shows it (POST /renders, GET /renders/{render_id})."""

    render_id: str
    status: JobState
    template_id: str
    version: str
    urls: Urls = Field(description="the video, poster and landing page, once rendered")
    error: ErrorDetail | None = Field(None, description="why the render failed")
    progress: float = Field(0.0, description="the share of the render done, 0 to 1")


class BatchView(Strict):
    """A batch as the API shows it (POST /batches)."""

    batch_id: str
    status: JobState
    template_id: str
    version: str
    source: str = Field(description="the blob key of the CSV/JSONL the batch reads")
    total: int | None = Field(None, description="the number of records, known once planned")
    error: str | None = Field(None, description="why the batch could not run at all")


class ResultView(RecipientResult):
    """One recipient's result in a batch page, its media URLs signed when shown."""

    index: int = Field(description="its position in the batch: the `after` of the next page")
    # Where the media are kept stays inside: `output` and `poster` are their URLs.
    output_key: SkipJsonSchema[str | None] = Field(None, exclude=True)
    poster_key: SkipJsonSchema[str | None] = Field(None, exclude=True)


class BatchPage(BatchView):
    """GET /batches/{batch_id}: the batch, its counts by status and a page of results."""

    counts: dict[str, int] = Field(description="results by status: rendered, cached, failed")
    results: list[ResultView]
    next: int | None = Field(None, description="the `after` of the next page; null: the last")


class UploadResult(Strict):
    key: str = Field(description="the blob key: a batch's `source`")


class DeliveryList(Strict):
    """GET /deliveries."""

    deliveries: list[Delivery] = Field(description="newest first")
    disabled: dict[str, str] = Field(description="connectors disabled (410 Gone), and why")


class Query(BaseModel):
    """A query string: unknown parameters are ignored (a cache buster, say)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class TemplateQuery(Query):
    version: str | None = Field(None, description="a registered version; default: the latest")


class BatchQuery(Query):
    after: int = Field(-1, ge=-1, le=2**62, description="the `next` of the previous page")
    limit: int = Field(100, ge=1, le=1000, description="results per page")


class DeliveriesQuery(Query):
    status: DeliveryStatus | None = Field(None, description="only the deliveries in this state")
    limit: int = Field(100, ge=1, le=1000)


class MediaQuery(Query):
    """The signature of a media URL, as the store made it (LocalBlobStore.url)."""

    expires: str = Field("", description="Unix seconds: the URL works until then")
    sig: str = Field("", description="the URL's signature (unsigned, expired: 403)")


def _json(body: BaseModel, status: int = 200) -> Response:
    return Response(
        body=body.model_dump(mode="json"),
        status_code=status,
        headers={"Content-Type": "application/json"},
    )


def _render(record: RenderRecord) -> RenderView:
    b = bootstrap.backends()
    result = record.result
    error = None
    if result is not None and result.reason:
        code, field = result.code or "render_failed", result.field or ""
        error = ErrorDetail(code=code, message=result.reason, field=field)
    return RenderView(
        render_id=record.id,
        status=record.state,
        template_id=record.template_id,
        version=record.version,
        urls=renders.render_urls(b, record),
        error=error,
        progress=1.0 if record.state is JobState.done else record.progress,
    )


def _batch(record: BatchRecord) -> BatchView:
    return BatchView(
        batch_id=record.id,
        status=record.state,
        template_id=record.template_id,
        version=record.version,
        source=record.source_key,
        total=record.total,
        error=record.error,
    )


def _params(model: type[Q]) -> Q:
    """The query string, checked against its model (the error names the parameter)."""
    params = api.current_request.query_params
    return parse_model(model, {k: params[k] for k in params} if params else {})


def _raw_body() -> bytes:
    raw = api.current_request.raw_body or b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def _fresh(b: Backends, index: int, result: RecipientResult) -> ResultView:
    """A stored result with its media URLs signed now (they expire on AWS)."""
    urls = {}
    if result.output_key and result.poster_key:
        urls = {"output": b.blobs.url(result.output_key), "poster": b.blobs.url(result.poster_key)}
    fields = result.model_dump(exclude={"output_key", "poster_key"})
    return ResultView(index=index, **(fields | urls))


# ── templates ─────────────────────────────────────────────────────────────────────────────


@api.route(
    "/templates",
    methods=["POST"],
    content_types=["application/json", "application/x-yaml", "text/yaml", "application/zip"],
)
@Operation(
    "Register a template version",
    "templates",
    TemplateRecord,
    status=201,
    request=templates.TemplateUpload,
    raw_request=Media(("application/zip",), "the campaign's zip bundle", BINARY),
    key=True,
    errors=(400, 401, 404),
    description=(
        "The body is a TemplateUpload (JSON or YAML), or the campaign's zip bundle itself "
        "(`application/zip`: template.yaml, scenes/, assets/). The same files give the "
        "same version."
    ),
)
@handles_errors
def register_template() -> Response:
    request = api.current_request
    require_key(request)
    b = bootstrap.backends()
    if request.headers.get("content-type", "").startswith("application/zip"):
        record = templates.register_template(b, bundle=_raw_body())
    else:
        upload = parse_model(templates.TemplateUpload, parse_document(request))
        record = templates.register_template(b, upload)
    return _json(record, 201)


@api.route("/templates/{template_id}")
@Operation(
    "A registered template",
    "templates",
    TemplateRecord,
    query=TemplateQuery,
    params=(Param("template_id", "the template's id"),),
    errors=(400, 404),
)
@handles_errors
def get_template(template_id: str) -> Response:
    version = _params(TemplateQuery).version
    return _json(templates.get_template(bootstrap.backends(), template_id, version))


# ── renders ───────────────────────────────────────────────────────────────────────────────


@api.route("/renders", methods=["POST"], content_types=["application/json"])
@Operation(
    "Render one recipient",
    "renders",
    RenderView,
    status=202,
    request=renders.RenderRequest,
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def create_render() -> Response:
    require_key(api.current_request)
    req = parse_model(renders.RenderRequest, parse_document(api.current_request))
    return _json(_render(renders.create_render(bootstrap.backends(), req)), 202)


@api.route("/renders/{render_id}")
@Operation(
    "A render's status and media",
    "renders",
    RenderView,
    params=(Param("render_id", "as POST /renders answered"),),
)
@handles_errors
def get_render(render_id: str) -> Response:
    return _json(_render(renders.get_render(bootstrap.backends(), render_id)))


# ── batches ───────────────────────────────────────────────────────────────────────────────


@api.route("/batches", methods=["POST"], content_types=["application/json"])
@Operation(
    "Render a list of recipients",
    "batches",
    BatchView,
    status=202,
    request=batches.BatchRequest,
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def create_batch() -> Response:
    require_key(api.current_request)
    req = parse_model(batches.BatchRequest, parse_document(api.current_request))
    limit = bootstrap.settings().max_inline_records
    return _json(_batch(batches.create_batch(bootstrap.backends(), req, max_inline=limit)), 202)


@api.route("/batches/{batch_id}")
@Operation(
    "A batch's progress and a page of its results",
    "batches",
    BatchPage,
    query=BatchQuery,
    params=(Param("batch_id", "as POST /batches answered"),),
    errors=(400, 404),
)
@handles_errors
def get_batch(batch_id: str) -> Response:
    """The batch's counts by status and a page of per-recipient results (`?after=&limit=`)."""
    b = bootstrap.backends()
    batch = batches.get_batch(b, batch_id)
    query = _params(BatchQuery)
    page = b.results.list_results(batch_id, after=query.after, limit=query.limit)
    return _json(
        BatchPage(
            **dict(_batch(batch)),
            counts=b.results.count_results(batch_id),
            results=[_fresh(b, i, r) for i, r in page],
            next=page[-1][0] if len(page) == query.limit else None,
        )
    )


# ── uploads and (embedded default) media files ────────────────────────────────────────────


@api.route(
    "/uploads/{name}",
    methods=["PUT"],
    content_types=["text/csv", "application/x-ndjson", "application/jsonl", "text/plain"],
)
@Operation(
    "Upload a CSV or JSONL file of records (a batch's source)",
    "batches",
    UploadResult,
    status=201,
    request=Media((), "the file's bytes", TEXT),
    params=(Param("name", "the file's name", pattern=UPLOAD_NAME.pattern),),
    key=True,
    errors=(400, 401),
)
@handles_errors
def upload(name: str) -> Response:
    """Store a CSV/JSONL file; its key is the `source` of a batch."""
    require_key(api.current_request)
    if not UPLOAD_NAME.match(name):
        raise RequestError("an upload is named like recipients.csv or records.jsonl", "name")
    body = _raw_body()
    if not body:
        raise RequestError("the upload is empty", field="body")
    key = f"uploads/{new_id('u')}/{name}"
    bootstrap.backends().blobs.put_bytes(key, body)
    return _json(UploadResult(key=key), 201)


@api.route("/files/{folder}/{name}")
@Operation(
    "A video, poster or GIF by its signed URL (local backend; on AWS, CloudFront's)",
    "media",
    Media(("video/mp4", "image/jpeg", "image/gif"), "the file", BINARY),
    query=MediaQuery,
    params=(
        Param("folder", "the kind of media", enum=tuple(sorted(MEDIA_FOLDERS))),
        Param("name", "the file's name"),
    ),
    errors=(403, 404),
)
@handles_errors
def media_file(folder: str, name: str) -> Response:
    """Videos, posters and thumbnails of the local backend, by the signed URL the store made
    (`?expires=…&sig=…`, see LocalBlobStore.url); on AWS, CloudFront serves signed URLs."""
    import time

    from chalicelib.errors import ForbiddenError
    from chalicelib.landing.tokens import verify_media

    b = bootstrap.backends()
    if bootstrap.settings().backend != "local" or folder not in MEDIA_FOLDERS:
        raise NotFoundError(f"no file {folder}/{name}", field="path")
    query = _params(MediaQuery)
    key, expires = f"{folder}/{name}", query.expires
    # The signature first: without one, nobody learns which files exist.
    if not verify_media(b.secret, key, expires, query.sig):
        raise ForbiddenError("this media URL is not signed by this server", field="sig")
    left = int(expires) - int(time.time())
    if left <= 0:
        raise ForbiddenError("this media URL has expired: fetch the render again", "expires")
    try:
        data = b.blobs.get_bytes(key)
    except (KeyError, ValueError):
        raise NotFoundError(f"no file {folder}/{name}", field="path") from None
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        body=data,
        status_code=200,
        # Immutable, but no cache may keep it past the URL's expiry.
        headers={"Content-Type": kind, "Cache-Control": f"private, max-age={left}, immutable"},
    )


# ── deliveries to the CRM connectors ──────────────────────────────────────────────────────


@api.route("/deliveries")
@Operation(
    "The relay's deliveries, newest first",
    "deliveries",
    DeliveryList,
    query=DeliveriesQuery,
    key=True,
    errors=(400, 401),
)
@handles_errors
def list_deliveries() -> Response:
    """The relay's deliveries, newest first (`?status=failed` for the dead letters)."""
    require_key(api.current_request)
    query = _params(DeliveriesQuery)
    b = bootstrap.backends()
    found = b.deliveries.by_status(query.status, query.limit)
    return _json(DeliveryList(deliveries=found, disabled=b.deliveries.disabled()))


@api.route("/deliveries/{key}/redeliver", methods=["POST"])
@Operation(
    "Put a dead-lettered or disabled delivery back in line",
    "deliveries",
    Delivery,
    status=202,
    params=(Param("key", "the delivery's key"),),
    key=True,
    errors=(401, 404),
)
@handles_errors
def redeliver(key: str) -> Response:
    """Put a dead-lettered or disabled delivery back in line (its connector enabled again)."""
    require_key(api.current_request)
    return _json(bootstrap.relay().redeliver(key), 202)


# ── failed asynchronous invocations (an upload's S3 trigger, a stream's render) ──────────────


class FailureList(Strict):
    """GET /failures."""

    failures: list[FailedInvocation] = Field(description="newest first")


class FailuresQuery(Query):
    limit: int = Field(50, ge=1, le=1000)


@api.route("/failures")
@Operation(
    "Asynchronous invocations that failed for good, newest first",
    "failures",
    FailureList,
    query=FailuresQuery,
    key=True,
    errors=(400, 401),
)
@handles_errors
def list_failures() -> Response:
    """The dead letters of asynchronous invocations (none on the local backend)."""
    require_key(api.current_request)
    query = _params(FailuresQuery)
    return _json(FailureList(failures=bootstrap.failures().recent(query.limit)))


@api.route("/failures/{failure_id}/retry", methods=["POST"])
@Operation(
    "Invoke a failed asynchronous invocation again, with its event",
    "failures",
    FailedInvocation,
    status=202,
    params=(Param("failure_id", "the failure's id"),),
    key=True,
    errors=(401, 404),
)
@handles_errors
def retry_failure(failure_id: str) -> Response:
    """Invoke the function again, asynchronously, and drop the dead letter."""
    require_key(api.current_request)
    return _json(bootstrap.failures().retry(failure_id), 202)
