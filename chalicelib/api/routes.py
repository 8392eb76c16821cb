"""The API's routes: templates, renders, batches, uploads, and (locally) the media files."""

from __future__ import annotations

import mimetypes
import re
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib import bootstrap
from chalicelib.api import handles_errors, parse_document, parse_model, require_key
from chalicelib.errors import NotFoundError, RequestError
from chalicelib.pipeline import service
from chalicelib.pipeline.jobs import BatchRecord, RecipientResult, RenderRecord, TemplateRecord
from chalicelib.settings import get_settings

api = Blueprint(__name__)

MEDIA_FOLDERS = {"videos", "posters", "thumbnails"}
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.(csv|jsonl|ndjson)$")


def _json(body: Any, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def _template(record: TemplateRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _render(record: RenderRecord) -> dict[str, Any]:
    b = bootstrap.backends()
    body: dict[str, Any] = {
        "render_id": record.id,
        "status": record.state.value,
        "template_id": record.template_id,
        "version": record.version,
        "urls": service.render_urls(b, record).model_dump(),
    }
    result = record.result
    if result is not None and result.reason:
        body["error"] = {"code": result.code, "message": result.reason, "field": result.field}
    return body


def _batch(record: BatchRecord) -> dict[str, Any]:
    return {
        "batch_id": record.id,
        "status": record.state.value,
        "template_id": record.template_id,
        "version": record.version,
        "source": record.source_key,
        "total": record.total,
        "error": record.error,
    }


def _query(name: str) -> str | None:
    params = api.current_request.query_params
    return None if params is None else params.get(name)


def _raw_body() -> bytes:
    raw = api.current_request.raw_body or b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def _fresh(b: service.Backends, result: RecipientResult) -> dict[str, Any]:
    """A stored result with its media URLs signed now (they expire on AWS)."""
    out = result.model_dump(mode="json", exclude={"output_key", "poster_key"})
    if result.output_key and result.poster_key:
        out |= {"output": b.blobs.url(result.output_key), "poster": b.blobs.url(result.poster_key)}
    return out


def _int_param(name: str, default: int, low: int, high: int) -> int:
    raw = _query(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(f"{name} must be an integer", field=name) from None
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}", field=name)
    return value


# ── templates ─────────────────────────────────────────────────────────────────────────────


@api.route(
    "/templates",
    methods=["POST"],
    content_types=["application/json", "application/x-yaml", "text/yaml", "application/zip"],
)
@handles_errors
def register_template() -> Response:
    request = api.current_request
    require_key(request)
    b = bootstrap.backends()
    if request.headers.get("content-type", "").startswith("application/zip"):
        record = service.register_template(b, bundle=_raw_body())
    else:
        upload = parse_model(service.TemplateUpload, parse_document(request))
        record = service.register_template(b, upload)
    return _json(_template(record), 201)


@api.route("/templates/{template_id}")
@handles_errors
def get_template(template_id: str) -> Response:
    version = _query("version")
    return _json(_template(service.get_template(bootstrap.backends(), template_id, version)))


# ── renders ───────────────────────────────────────────────────────────────────────────────


@api.route("/renders", methods=["POST"], content_types=["application/json"])
@handles_errors
def create_render() -> Response:
    require_key(api.current_request)
    req = parse_model(service.RenderRequest, parse_document(api.current_request))
    return _json(_render(service.create_render(bootstrap.backends(), req)), 202)


@api.route("/renders/{render_id}")
@handles_errors
def get_render(render_id: str) -> Response:
    return _json(_render(service.get_render(bootstrap.backends(), render_id)))


# ── batches ───────────────────────────────────────────────────────────────────────────────


@api.route("/batches", methods=["POST"], content_types=["application/json"])
@handles_errors
def create_batch() -> Response:
    require_key(api.current_request)
    req = parse_model(service.BatchRequest, parse_document(api.current_request))
    return _json(_batch(service.create_batch(bootstrap.backends(), req)), 202)


@api.route("/batches/{batch_id}")
@handles_errors
def get_batch(batch_id: str) -> Response:
    """The batch's counts by status and a page of per-recipient results (`?after=&limit=`)."""
    b = bootstrap.backends()
    body = _batch(service.get_batch(b, batch_id))
    after = _int_param("after", -1, -1, 2**62)
    limit = _int_param("limit", 100, 1, 1000)
    page = b.jobs.list_results(batch_id, after=after, limit=limit)
    body["counts"] = b.jobs.count_results(batch_id)
    body["results"] = [{"index": i, **_fresh(b, r)} for i, r in page]
    body["next"] = page[-1][0] if len(page) == limit else None
    return _json(body)


# ── uploads and (embedded default) media files ────────────────────────────────────────────


@api.route(
    "/uploads/{name}",
    methods=["PUT"],
    content_types=["text/csv", "application/x-ndjson", "application/jsonl", "text/plain"],
)
@handles_errors
def upload(name: str) -> Response:
    """Store a CSV/JSONL file; its key is the `source` of a batch."""
    require_key(api.current_request)
    if not _UPLOAD_NAME.match(name):
        raise RequestError("an upload is named like recipients.csv or records.jsonl", "name")
    body = _raw_body()
    if not body:
        raise RequestError("the upload is empty", field="body")
    key = f"uploads/{service.new_id('u')}/{name}"
    bootstrap.backends().blobs.put_bytes(key, body)
    return _json({"key": key}, 201)


@api.route("/files/{folder}/{name}")
@handles_errors
def media_file(folder: str, name: str) -> Response:
    """Videos and posters of the local backend (on AWS they are served by CloudFront)."""
    b = bootstrap.backends()
    if get_settings().backend != "local" or folder not in MEDIA_FOLDERS:
        raise NotFoundError(f"no file {folder}/{name}", field="path")
    try:
        data = b.blobs.get_bytes(f"{folder}/{name}")
    except (KeyError, ValueError):
        raise NotFoundError(f"no file {folder}/{name}", field="path") from None
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        body=data,
        status_code=200,
        headers={"Content-Type": kind, "Cache-Control": "public, max-age=31536000, immutable"},
    )


# ── deliveries to the CRM connectors ──────────────────────────────────────────────────────


@api.route("/deliveries")
@handles_errors
def list_deliveries() -> Response:
    """The relay's deliveries, newest first (`?status=failed` for the dead letters)."""
    from chalicelib.connectors.base import DeliveryStatus

    require_key(api.current_request)
    raw = _query("status")
    try:
        status = DeliveryStatus(raw) if raw else None
    except ValueError:
        choices = ", ".join(s.value for s in DeliveryStatus)
        raise RequestError(f"status is one of {choices}", field="status") from None
    b = bootstrap.backends()
    found = b.deliveries.by_status(status, _int_param("limit", 100, 1, 1000))
    return _json(
        {
            "deliveries": [d.model_dump(mode="json") for d in found],
            "disabled": b.deliveries.disabled(),
        }
    )


@api.route("/deliveries/{key}/redeliver", methods=["POST"])
@handles_errors
def redeliver(key: str) -> Response:
    """Put a dead-lettered or disabled delivery back in line (its connector enabled again)."""
    require_key(api.current_request)
    return _json(bootstrap.relay().redeliver(key).model_dump(mode="json"), 202)
