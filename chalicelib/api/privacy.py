"""Privacy routes: erase a recipient (the right to be forgotten) and export what Reel holds
about them (the right of access). Both need the API key; neither puts personal data in a URL
beyond the recipient id the caller already holds."""

from __future__ import annotations

import hashlib

from chalice.app import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field

from chalicelib import bootstrap
from chalicelib.api import handles_errors, parse_model, require_key
from chalicelib.api.operations import Operation, Param
from chalicelib.services import privacy as service

privacy = Blueprint(__name__)

RECIPIENT = Param("recipient_id", "the recipient's id in the campaign(s)")
NO_STORE: dict[str, str | list[str]] = {
    "Cache-Control": "no-store",
    "Content-Type": "application/json",
}


class CampaignQuery(BaseModel):
    """`?campaign=`: one campaign; without it, every campaign of the recipient."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    campaign: str | None = Field(None, min_length=1, description="the campaign (template id)")


def _actor() -> str:
    """Who asked: the API key, by a fingerprint that cannot be turned back into it (the audit
    entry says which key asked, never what it is)."""
    given = privacy.current_request.headers.get("x-api-key", "")
    return "api:" + hashlib.sha256(given.encode()).hexdigest()[:12]


def _query() -> CampaignQuery:
    params = privacy.current_request.query_params
    return parse_model(CampaignQuery, {k: params[k] for k in params} if params else {})


@privacy.route("/recipients/{recipient_id}", methods=["DELETE"])
@Operation(
    "Erase a recipient: record, pages, media, events, deliveries, batch rows",
    "privacy",
    service.Erasure,
    query=CampaignQuery,
    params=(RECIPIENT,),
    key=True,
    errors=(400, 401, 404),
    description="Their page tokens answer 410 Gone afterwards. The answer is the audit entry "
    "(it names no one).",
)
@handles_errors
def erase_recipient(recipient_id: str) -> Response:
    require_key(privacy.current_request)
    query = _query()
    entry = service.erase(bootstrap.backends(), recipient_id, query.campaign, actor=_actor())
    return Response(body=entry.model_dump_json(), status_code=200, headers=NO_STORE)


@privacy.route("/recipients/{recipient_id}/export")
@Operation(
    "Everything held about a recipient, as one JSON document",
    "privacy",
    service.RecipientExport,
    query=CampaignQuery,
    params=(RECIPIENT,),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def export_recipient(recipient_id: str) -> Response:
    require_key(privacy.current_request)
    query = _query()
    document = service.export(bootstrap.backends(), recipient_id, query.campaign)
    return Response(body=document.model_dump_json(), status_code=200, headers=NO_STORE)
