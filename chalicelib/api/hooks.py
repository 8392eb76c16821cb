"""Inbound hooks: a CRM posts signed records, each starts one render of the campaign.

`POST /hooks/{hubspot|salesforce|generic}/{campaign_id}` (the campaign is a template id):
verify the signature (chalicelib.connectors.inbound), read the body's records, map each through
the campaign's mapping.yaml, claim the message's replay key (a replay answers 409, starting
nothing), then queue one render per good record. 202 `{"renders": [{"render_id",
"recipient_id"}], "rejected": [{"index", "error"}]}`; every record bad → 400. Renders are
queued with the orchestrator, never rendered in the request.

Bodies (JSON): one record object, or a list of at most MAX_RECORDS records. HubSpot also:
`{"properties": {...}}` or `{"objectId": …, "properties": {...}}` objects (a workflow webhook's
contact), with `{"value": …}` property objects flattened and the object's id as `hs_object_id`;
webhooks-API subscription events (`subscriptionType`) carry no record and are refused.
Salesforce: a serialized sObject's `attributes` are dropped.

The recipient id is the mapping's `id` column (default `recipient_id`), else `hs_object_id`
(HubSpot) or `Id` (Salesforce); it is put under `recipient_id` in the render's data.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from chalice.app import Blueprint, Request, Response
from pydantic import Field, RootModel, ValidationError

from chalicelib import bootstrap
from chalicelib.api import ErrorDetail, handles_errors
from chalicelib.api.operations import CAMPAIGN, Operation, Param
from chalicelib.connectors import inbound
from chalicelib.data.mapping import FieldMapping, apply_mapping, recipient_id
from chalicelib.errors import DataError, NotFoundError, ReelError, RequestError
from chalicelib.services import templates
from chalicelib.services.renders import RenderRequest, create_render
from chalicelib.template.documents import DocumentError, load_json
from chalicelib.template.model import Strict

hooks = Blueprint(__name__)

clock: Callable[[], float] = time.time  # tests put another clock here
MAX_RECORDS = 100  # per request: the answer comes within a second
CLAIM_SECONDS = 3 * inbound.TOLERANCE  # outlives any timestamp the window still accepts
_CAMPAIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")

Reader = Callable[[dict[str, Any]], dict[str, Any]]

Records = Annotated[list[Any], Field(min_length=1, max_length=MAX_RECORDS)]


class HookBody(RootModel[dict[str, Any] | Records]):
    """What a CRM posts: one record (a JSON object), or a list of records."""

    def records(self) -> list[Any]:
        return self.root if isinstance(self.root, list) else [self.root]


class HookRender(Strict):
    render_id: str
    recipient_id: str


class HookRejection(Strict):
    index: int = Field(description="the record's position in the body")
    error: ErrorDetail


class HookResult(Strict):
    """The answer of a hook: the renders queued and the records refused (all refused: 400,
    with the first one's `error`)."""

    renders: list[HookRender]
    rejected: list[HookRejection]
    error: ErrorDetail | None = None


def _described(title: str, headers: tuple[Param, ...]) -> Operation:
    return Operation(
        f"A record from {title}: start its render",
        "hooks",
        HookResult,
        status=202,
        request=HookBody,
        params=(CAMPAIGN,),
        headers=headers,
        errors=(400, 401, 403, 404, 409),
        refusal=HookResult,  # every record refused: which, and why
        description=(
            "Starts one render per good record of the body (mapped through the campaign's "
            "mapping.yaml); a body is one record (a JSON object) or a list of at most "
            f"{MAX_RECORDS}. A signed message is accepted once (409 when replayed); 404 while "
            "the hook's secret is not configured."
        ),
    )


def _json(body: HookResult, status: int) -> Response:
    return Response(
        body=body.model_dump(exclude_none=True),
        status_code=status,
        headers={"Content-Type": "application/json"},
    )


def _raw_body() -> bytes:
    raw = hooks.current_request.raw_body or b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def _enabled(secret: str, name: str, variable: str) -> None:
    if not secret.strip():
        raise NotFoundError(
            f"the {name} hook is not enabled on this server (set {variable})", "path"
        )


def _error(exc: ReelError) -> ErrorDetail:
    first = exc.problems[0]
    message = str(first) if len(exc.problems) == 1 else str(exc)
    return ErrorDetail(code=exc.code, message=message, field=exc.field or first.field)


# ── the three hooks ───────────────────────────────────────────────────────────────────────


def _query_string(request: Request) -> str:
    params = request.query_params
    if not params:
        return ""
    pairs = [(k, v) for k in params for v in params.getlist(k)]
    return "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def hubspot_uris(request: Request, campaign_id: str) -> list[str]:
    """The URLs HubSpot may have signed. API Gateway passes neither the URL nor the raw query
    string, so they are rebuilt: first REEL_PUBLIC_URL (the API's public base, as for landing
    pages) + the route's path; then the Host header + the path API Gateway saw (with its stage
    prefix), the scheme from X-Forwarded-Proto. The query is re-encoded in the order received
    (the characters HubSpot decodes come out decoded either way); a target URL without a query
    string matches exactly."""
    query = _query_string(request)
    path = f"/hooks/hubspot/{campaign_id}"
    public = bootstrap.settings().public_url.rstrip("/")
    uris = [f"{public}{path}{query}"]
    host = request.headers.get("host", "").strip()
    if host:
        scheme = public.split("://")[0] if "://" in public else "https"
        proto = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        seen_path = str((request.context or {}).get("path") or path)
        uris.append(f"{proto or scheme}://{host}{seen_path}{query}")
    return list(dict.fromkeys(uris))


@hooks.route("/hooks/hubspot/{campaign_id}", methods=["POST"], content_types=["application/json"])
@_described(
    "a HubSpot workflow",
    (
        Param(inbound.HUBSPOT_SIGNATURE, "the v3 signature (HMAC-SHA256, base64)"),
        Param(inbound.HUBSPOT_TIMESTAMP, "milliseconds since the epoch"),
    ),
)
@handles_errors
def hubspot(campaign_id: str) -> Response:
    secret = bootstrap.settings().hubspot_client_secret
    _enabled(secret, "HubSpot", "REEL_HUBSPOT_CLIENT_SECRET")
    request = hooks.current_request
    body = _raw_body()
    key = inbound.verify_hubspot_v3(
        secret,
        request.method,
        hubspot_uris(request, campaign_id),
        body,
        request.headers.get(inbound.HUBSPOT_TIMESTAMP),
        request.headers.get(inbound.HUBSPOT_SIGNATURE),
        clock(),
    )
    return _start(
        Hook("hubspot", inbound.hubspot_record, ("hs_object_id",)), campaign_id, key, body
    )


@hooks.route(
    "/hooks/salesforce/{campaign_id}", methods=["POST"], content_types=["application/json"]
)
@_described(
    "Salesforce",
    (
        Param(inbound.SALESFORCE_SIGNATURE, "HMAC-SHA256 of `{timestamp}.{body}`, hex"),
        Param(inbound.SALESFORCE_TIMESTAMP, "seconds since the epoch"),
    ),
)
@handles_errors
def salesforce(campaign_id: str) -> Response:
    secret = bootstrap.settings().salesforce_hook_secret
    _enabled(secret, "Salesforce", "REEL_SALESFORCE_HOOK_SECRET")
    headers = hooks.current_request.headers
    body = _raw_body()
    key = inbound.verify_salesforce(
        secret,
        body,
        headers.get(inbound.SALESFORCE_TIMESTAMP),
        headers.get(inbound.SALESFORCE_SIGNATURE),
        clock(),
    )
    return _start(Hook("salesforce", inbound.salesforce_record, ("Id",)), campaign_id, key, body)


@hooks.route("/hooks/generic/{campaign_id}", methods=["POST"], content_types=["application/json"])
@_described(
    "any sender of Standard Webhooks",
    (
        Param(inbound.WEBHOOK_ID, "the message id"),
        Param(inbound.WEBHOOK_TIMESTAMP, "seconds since the epoch"),
        Param(inbound.WEBHOOK_SIGNATURE, "`v1,{base64 HMAC-SHA256}`, space-separated"),
    ),
)
@handles_errors
def generic(campaign_id: str) -> Response:
    raw = bootstrap.settings().inbound_webhook_secrets
    _enabled(raw.replace(",", ""), "Standard Webhooks", "REEL_INBOUND_WEBHOOK_SECRETS")
    headers = hooks.current_request.headers
    body = _raw_body()
    key = inbound.verify_standard(inbound.webhook_secrets(raw), body, headers, clock())
    return _start(Hook("generic", _as_is, ()), campaign_id, key, body)


# ── from a verified body to renders ───────────────────────────────────────────────────────


@dataclass(frozen=True)
class Hook:
    """What differs between the hooks once the request is verified."""

    name: str
    read: Reader  # a body's object → a flat record
    id_fallbacks: Sequence[str]  # columns naming the recipient when the mapping's is absent


def _as_is(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


@dataclass(frozen=True)
class Prepared:
    index: int
    data: dict[str, Any]
    recipient_id: str


def _records(body: bytes, hook: Hook) -> list[Any]:
    text = body.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise RequestError("the request body is empty", field="body")
    try:
        doc = load_json(text)  # refuses what JSON data cannot be: deep nesting, huge numbers…
    except DocumentError as exc:
        raise RequestError(exc.message, field=exc.field or "body") from None
    try:
        items = HookBody.model_validate(doc).records()
    except ValidationError:
        if isinstance(doc, list):
            many = f"{len(doc)} records; at most {MAX_RECORDS} a request"
            raise RequestError(many if doc else "the body holds no record", "body") from None
        raise RequestError(
            "the body is a record (a JSON object) or a list of records", "body"
        ) from None
    if hook.name == "hubspot" and all(inbound.is_hubspot_event(i) for i in items):
        raise RequestError(
            "HubSpot subscription events carry no contact record: send the contact from a "
            "workflow's webhook action",
            field="body",
        )
    return items


def _prepare(index: int, item: Any, hook: Hook, mapping: FieldMapping | None) -> Prepared:
    if not isinstance(item, dict):
        raise DataError("a record is a JSON object", field=f"[{index}]")
    if hook.name == "hubspot" and inbound.is_hubspot_event(item):
        raise DataError("a HubSpot subscription event carries no record", "subscriptionType")
    row = hook.read(item)
    data = apply_mapping(mapping, row)
    rid = recipient_id(mapping, row, "")
    for column in hook.id_fallbacks:
        value = row.get(column)
        if not rid and value is not None and str(value).strip():
            rid = str(value).strip()
    if not rid:
        column = mapping.id if mapping else "recipient_id"
        raise DataError(f"the record has no recipient id (no `{column}`)", field=column)
    return Prepared(index, {**data, "recipient_id": rid}, rid)


def _start(hook: Hook, campaign_id: str, replay_key: str, body: bytes) -> Response:
    b = bootstrap.backends()
    template = b.templates.get_template(campaign_id) if _CAMPAIGN.match(campaign_id) else None
    if template is None:
        raise NotFoundError(f"no campaign {campaign_id!r}", field="campaign_id")
    mapping = templates.campaign_mapping(b, template)
    rejected: list[HookRejection] = []
    ready: list[Prepared] = []
    for index, item in enumerate(_records(body, hook)):
        try:
            ready.append(_prepare(index, item, hook, mapping))
        except ReelError as exc:
            rejected.append(HookRejection(index=index, error=_error(exc)))
    if ready:
        # Claimed only now: a request refused as a whole can be sent again once fixed.
        digest = hashlib.sha256(replay_key.encode("utf-8")).hexdigest()
        if not b.claims.claim(f"hook:{hook.name}:{digest}", clock() + CLAIM_SECONDS):
            raise inbound.ReplayedError(
                "this signed message was already received: nothing is started again",
                field=inbound.REPLAY_FIELDS[hook.name],
            )
    renders: list[HookRender] = []
    for p in ready:
        req = RenderRequest(template_id=template.id, version=template.version, data=p.data)
        try:
            record = create_render(b, req)
        except ReelError as exc:
            rejected.append(HookRejection(index=p.index, error=_error(exc)))
            continue
        renders.append(HookRender(render_id=record.id, recipient_id=p.recipient_id))
    rejected.sort(key=lambda r: r.index)
    if not renders:
        first = rejected[0].error
        message = f"no record could be started: {first.message}"
        error = first.model_copy(update={"message": message})
        return _json(HookResult(renders=[], rejected=rejected, error=error), 400)
    return _json(HookResult(renders=renders, rejected=rejected), 202)
