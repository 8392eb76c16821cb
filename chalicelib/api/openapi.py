"""The HTTP API's OpenAPI 3.1 description (`GET /openapi.json`): one table of operations whose
bodies, query strings and errors are the pydantic models the routes parse and dump."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib import __version__
from chalicelib.api import ErrorBody
from chalicelib.api.delivery import RecipientDataView
from chalicelib.api.hls import AUDIO, CHUNK, MASTER, PLAYLIST, RENDITION, TS
from chalicelib.api.hooks import MAX_RECORDS, HookBody, HookResult
from chalicelib.api.routes import (
    MEDIA_FOLDERS,
    UPLOAD_NAME,
    BatchPage,
    BatchQuery,
    BatchView,
    DeliveriesQuery,
    DeliveryList,
    MediaQuery,
    RenderView,
    TemplateQuery,
    UploadResult,
)
from chalicelib.connectors import inbound
from chalicelib.connectors.base import Delivery
from chalicelib.pipeline.jobs import TemplateRecord
from chalicelib.services.batches import BatchRequest
from chalicelib.services.recipients import RecipientDataRequest
from chalicelib.services.renders import RenderRequest
from chalicelib.services.templates import TemplateUpload
from chalicelib.template.model import Strict
from chalicelib.tracking.analytics import CampaignReport
from chalicelib.tracking.events import EventBatch
from chalicelib.tracking.ingest import IngestResult

KEY_SCHEME = "apiKey"
REF = "#/components/schemas/{model}"


class Health(Strict):
    """GET /health."""

    status: Literal["ok"]
    version: str = Field(description="the running Reel's version")


@dataclass(frozen=True)
class Media:
    """A body that is not a JSON model: its media types and the schema of its bytes."""

    types: tuple[str, ...]
    description: str
    schema: tuple[tuple[str, Any], ...] = (("type", "string"),)

    def content(self) -> dict[str, Any]:
        return {t: {"schema": dict(self.schema)} for t in self.types}


BINARY = (("type", "string"), ("format", "binary"))
TEXT = (("type", "string"), ("minLength", 1))
JSON_DOCUMENT = (("type", "object"),)

Body = type[BaseModel] | Media


@dataclass(frozen=True)
class Param:
    """A path or header parameter (query strings are models: see `Op.query`)."""

    name: str
    description: str
    pattern: str | None = None
    enum: tuple[str, ...] = ()
    required: bool = True

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if self.pattern:
            schema["pattern"] = self.pattern
        if self.enum:
            schema = {"type": "string", "enum": list(self.enum)}
        return schema


@dataclass(frozen=True)
class Op:
    """One route of the app, described."""

    method: str
    path: str
    summary: str
    tag: str
    response: Body
    status: int = 200
    request: Body | None = None
    request_types: tuple[str, ...] = ("application/json",)  # of a model `request`
    raw_request: Media | None = None  # a body the route also takes as it is (a zip…)
    query: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()  # the path's, in any order (each `{name}` needs one)
    headers: tuple[Param, ...] = ()
    key: bool = False  # needs `x-api-key`
    errors: tuple[int, ...] = (404,)
    description: str = ""


YAML_TYPES = ("application/x-yaml", "text/yaml")
HTML = Media(("text/html",), "an HTML page")
TOKEN = Param("token", "the recipient's page token (from their landing page URL)")
CAMPAIGN = Param("campaign_id", "the campaign: its template id")
_CHUNK = CHUNK.pattern
_PLAYLIST = f"^({re.escape(MASTER)}|{re.escape(AUDIO)}|{RENDITION.pattern.strip('^$')})$"
_HOOK = (
    "Starts one render per good record of the body (mapped through the campaign's mapping.yaml); "
    f"a body is one record (a JSON object) or a list of at most {MAX_RECORDS}. A signed message "
    "is accepted once (409 when replayed); 404 while the hook's secret is not configured."
)


def _hook(name: str, title: str, headers: tuple[Param, ...]) -> Op:
    return Op(
        "POST",
        f"/hooks/{name}/{{campaign_id}}",
        f"A record from {title}: start its render",
        "hooks",
        HookResult,
        status=202,
        request=HookBody,
        params=(CAMPAIGN,),
        headers=headers,
        errors=(400, 401, 403, 404, 409),
        description=_HOOK,
    )


OPERATIONS: tuple[Op, ...] = (
    # ── the app's own ──
    Op("GET", "/health", "Liveness and version", "meta", Health, errors=()),
    Op(
        "GET",
        "/schema/template",
        "The JSON Schema of a template file",
        "meta",
        Media(("application/json",), "a JSON Schema (draft 2020-12)", JSON_DOCUMENT),
        errors=(),
    ),
    Op(
        "GET",
        "/openapi.json",
        "This description of the API",
        "meta",
        Media(("application/json",), "an OpenAPI 3.1 document", JSON_DOCUMENT),
        errors=(),
    ),
    # ── templates ──
    Op(
        "POST",
        "/templates",
        "Register a template version",
        "templates",
        TemplateRecord,
        status=201,
        request=TemplateUpload,
        request_types=("application/json", *YAML_TYPES),
        raw_request=Media(("application/zip",), "the campaign's zip bundle", BINARY),
        key=True,
        errors=(400, 401, 404),
        description=(
            "The body is a TemplateUpload (JSON or YAML), or the campaign's zip bundle itself "
            "(`application/zip`: template.yaml, scenes/, assets/). The same files give the "
            "same version."
        ),
    ),
    Op(
        "GET",
        "/templates/{template_id}",
        "A registered template",
        "templates",
        TemplateRecord,
        query=TemplateQuery,
        params=(Param("template_id", "the template's id"),),
        errors=(400, 404),
    ),
    # ── renders ──
    Op(
        "POST",
        "/renders",
        "Render one recipient",
        "renders",
        RenderView,
        status=202,
        request=RenderRequest,
        key=True,
        errors=(400, 401, 404),
    ),
    Op(
        "GET",
        "/renders/{render_id}",
        "A render's status and media",
        "renders",
        RenderView,
        params=(Param("render_id", "as POST /renders answered"),),
    ),
    # ── batches ──
    Op(
        "POST",
        "/batches",
        "Render a list of recipients",
        "batches",
        BatchView,
        status=202,
        request=BatchRequest,
        key=True,
        errors=(400, 401, 404),
    ),
    Op(
        "GET",
        "/batches/{batch_id}",
        "A batch's progress and a page of its results",
        "batches",
        BatchPage,
        query=BatchQuery,
        params=(Param("batch_id", "as POST /batches answered"),),
        errors=(400, 404),
    ),
    Op(
        "PUT",
        "/uploads/{name}",
        "Upload a CSV or JSONL file of records (a batch's source)",
        "batches",
        UploadResult,
        status=201,
        request=Media(
            ("text/csv", "application/x-ndjson", "application/jsonl", "text/plain"),
            "the file's bytes",
            TEXT,
        ),
        params=(Param("name", "the file's name", pattern=UPLOAD_NAME.pattern),),
        key=True,
        errors=(400, 401),
    ),
    Op(
        "GET",
        "/files/{folder}/{name}",
        "A video, poster or GIF by its signed URL (local backend; on AWS, CloudFront's)",
        "media",
        Media(("video/mp4", "image/jpeg", "image/gif"), "the file", BINARY),
        query=MediaQuery,
        params=(
            Param("folder", "the kind of media", enum=tuple(sorted(MEDIA_FOLDERS))),
            Param("name", "the file's name"),
        ),
        errors=(403, 404),
    ),
    # ── deliveries to the CRM connectors ──
    Op(
        "GET",
        "/deliveries",
        "The relay's deliveries, newest first",
        "deliveries",
        DeliveryList,
        query=DeliveriesQuery,
        key=True,
        errors=(400, 401),
    ),
    Op(
        "POST",
        "/deliveries/{key}/redeliver",
        "Put a dead-lettered or disabled delivery back in line",
        "deliveries",
        Delivery,
        status=202,
        params=(Param("key", "the delivery's key"),),
        key=True,
        errors=(401, 404),
    ),
    # ── landing pages and measurement ──
    Op(
        "GET",
        "/v/{token}",
        "A recipient's landing page",
        "delivery",
        HTML,
        params=(TOKEN,),
    ),
    Op(
        "GET",
        "/v/{token}/captions.vtt",
        "The captions of a recipient's video",
        "delivery",
        Media(("text/vtt",), "WebVTT captions"),
        params=(TOKEN,),
    ),
    Op(
        "GET",
        "/v/{token}/poster.jpg",
        "A recipient's poster (made from their stream when first asked for)",
        "delivery",
        Media(("image/jpeg",), "the poster", BINARY),
        params=(TOKEN,),
        errors=(400, 404, 503),
    ),
    Op(
        "GET",
        "/v/{token}/email.gif",
        "The animated GIF of a recipient's email snippet (a link that does not expire)",
        "delivery",
        Media(("image/gif",), "the GIF", BINARY),
        params=(TOKEN,),
    ),
    Op(
        "GET",
        "/static/{name}",
        "The landing page's script and style sheet",
        "delivery",
        Media(("text/javascript", "text/css"), "the file"),
        params=(Param("name", "the file's name"),),
    ),
    Op(
        "POST",
        "/events",
        "The player's tracking events",
        "delivery",
        IngestResult,
        status=202,
        request=EventBatch,
        request_types=("application/json", "text/plain"),
        errors=(400, 403),
        description="`text/plain` is what `navigator.sendBeacon` sends: the same JSON body.",
    ),
    Op(
        "GET",
        "/campaigns/{campaign_id}/analytics",
        "A campaign's funnel, retention and per-recipient stats",
        "delivery",
        CampaignReport,
        params=(CAMPAIGN,),
    ),
    Op(
        "GET",
        "/dashboard/{campaign_id}",
        "A campaign's dashboard",
        "delivery",
        HTML,
        params=(CAMPAIGN,),
    ),
    Op(
        "PUT",
        "/recipients/{recipient_id}/data",
        "Replace a recipient's record (their stream shows it at once)",
        "delivery",
        RecipientDataView,
        request=RecipientDataRequest,
        params=(Param("recipient_id", "the recipient's id in the campaign"),),
        key=True,
        errors=(400, 401, 404),
    ),
    # ── inbound hooks ──
    _hook(
        "hubspot",
        "a HubSpot workflow",
        (
            Param(inbound.HUBSPOT_SIGNATURE, "the v3 signature (HMAC-SHA256, base64)"),
            Param(inbound.HUBSPOT_TIMESTAMP, "milliseconds since the epoch"),
        ),
    ),
    _hook(
        "salesforce",
        "Salesforce",
        (
            Param(inbound.SALESFORCE_SIGNATURE, "HMAC-SHA256 of `{timestamp}.{body}`, hex"),
            Param(inbound.SALESFORCE_TIMESTAMP, "seconds since the epoch"),
        ),
    ),
    _hook(
        "generic",
        "any sender of Standard Webhooks",
        (
            Param(inbound.WEBHOOK_ID, "the message id"),
            Param(inbound.WEBHOOK_TIMESTAMP, "seconds since the epoch"),
            Param(inbound.WEBHOOK_SIGNATURE, "`v1,{base64 HMAC-SHA256}`, space-separated"),
        ),
    ),
    # ── HLS streams ──
    Op(
        "GET",
        "/hls/s/{name}",
        "A chunk every recipient shares",
        "streams",
        Media((TS,), "an MPEG-TS chunk", BINARY),
        params=(Param("name", "the chunk's key", pattern=_CHUNK),),
        errors=(400, 404, 503),
    ),
    Op(
        "GET",
        "/hls/{token}/p/{name}",
        "One of a recipient's personal chunks (rendered just in time)",
        "streams",
        Media((TS,), "an MPEG-TS chunk", BINARY),
        params=(TOKEN, Param("name", "the chunk's key", pattern=_CHUNK)),
        errors=(400, 404, 503),
    ),
    Op(
        "GET",
        "/hls/{token}/{name}",
        "A recipient's playlists: index.m3u8, {height}p.m3u8, audio.m3u8",
        "streams",
        Media((PLAYLIST,), "an HLS playlist"),
        params=(TOKEN, Param("name", "the playlist", pattern=_PLAYLIST)),
        errors=(400, 404),
    ),
)

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad input: the error names the field",
    401: "Missing or invalid API key (`x-api-key`)",
    403: "Forbidden",
    404: "Not found",
    409: "Already received",
    503: "Still being made: retry after `Retry-After` seconds",
}


def _models(ops: tuple[Op, ...]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for op in ops:
        if isinstance(op.response, type):
            found[(op.response, "serialization")] = None
        if isinstance(op.request, type):
            found[(op.request, "validation")] = None
        if op.query is not None:
            found[(op.query, "validation")] = None
    return list(found)


def _content(body: Body, refs: dict[Any, Any], mode: JsonSchemaMode, types: tuple[str, ...]) -> Any:
    if isinstance(body, Media):
        return body.content()
    schema = refs[(body, mode)]
    return {t: {"schema": schema} for t in types}


def _operation(op: Op, refs: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    names = re.findall(r"{(\w+)}", op.path)
    by_name = {p.name: p for p in op.params}
    if sorted(names) != sorted(by_name):
        raise ValueError(f"{op.method} {op.path}: describe the path parameters {names}")
    parameters = [
        {"name": p.name, "in": "path", "required": True, "description": p.description}
        | {"schema": p.schema()}
        for p in (by_name[n] for n in names)
    ]
    if op.query is not None:
        query = schemas[refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(query.get("required", ()))
        for name, schema in query["properties"].items():
            schema = _not_null(schema)
            parameters.append(
                {"name": name, "in": "query", "required": name in required}
                | ({"description": schema["description"]} if "description" in schema else {})
                | {"schema": schema}
            )
    parameters += [
        {"name": h.name, "in": "header", "required": h.required, "description": h.description}
        | {"schema": h.schema()}
        for h in op.headers
    ]
    ok: dict[str, Any] = {"description": _STATUS_TEXT[op.status]}
    ok["content"] = _content(op.response, refs, "serialization", ("application/json",))
    if isinstance(op.response, Media):
        ok["description"] = op.response.description
    responses: dict[str, Any] = {str(op.status): ok}
    errors = sorted({*op.errors, *((401,) if op.key else ())})
    for status in errors:
        schema = refs[(ErrorBody, "serialization")]
        if status == 400 and op.response is HookResult:  # every record refused: which, why
            schema = {"anyOf": [schema, refs[(HookResult, "serialization")]]}
        error: dict[str, Any] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": schema}},
        }
        if status == 503:
            seconds = {"type": "string", "pattern": "^[0-9]+$"}
            error["headers"] = {"Retry-After": {"description": "seconds", "schema": seconds}}
        responses[str(status)] = error
    out: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        out["description"] = op.description
    if parameters:
        out["parameters"] = parameters
    if op.request is not None:
        body = _content(op.request, refs, "validation", op.request_types)
        if op.raw_request is not None:
            body |= op.raw_request.content()
        out["requestBody"] = {"required": True, "content": body}
    out["responses"] = responses
    if op.key:
        out["security"] = [{KEY_SCHEME: []}]
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter is absent, never null: its schema without the null."""
    options: list[dict[str, Any]] = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if len(options) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return options[0] | rest


def _operation_id(op: Op) -> str:
    words = re.findall(r"[a-z0-9]+", op.path.replace("{", "by_").lower())
    return "_".join([op.method.lower(), *words])


def openapi_document() -> dict[str, Any]:
    """The description of every route, as a JSON document (a copy: callers may change it)."""
    return copy.deepcopy(_document())


@cache  # the routes and models are fixed: built once per process
def _document() -> dict[str, Any]:
    refs, defs = models_json_schema(_models(OPERATIONS), ref_template=REF)
    schemas = defs.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Reel",
            "version": __version__,
            "description": (
                "Personalized video: register a template, render recipients one by one or in "
                "batches, serve their landing pages and streams, measure how they watch. "
                'Every 4xx answers `{"error": {"code", "message", "field"}}`.'
            ),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [{"name": t} for t in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                KEY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "one of REEL_API_KEYS (`reel serve` prints a dev key)",
                }
            },
        },
    }
