"""The job model: what a render step receives and what it reports, one recipient at a time."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from chalicelib.data.mapping import FieldMapping
from chalicelib.template.model import Strict
from chalicelib.template.plan import RenderPlan


class Status(StrEnum):
    rendered = "rendered"  # rendered by this run
    cached = "cached"  # its output already existed (a rerun, or the same record twice)
    failed = "failed"


class RecipientJob(Strict):
    """One recipient to render: the resolved plan and where its outputs go."""

    recipient_id: str
    line: int = Field(description="line of the source file (0 for API records)")
    plan: RenderPlan
    output_key: str = Field(description="BlobStore key of the MP4; a content hash of the plan")
    poster_key: str
    preview: bool = False
    consent: bool | None = Field(None, description="the record's tracking consent, if it says")


class RecipientResult(Strict):
    """One line of results.jsonl."""

    recipient_id: str
    line: int
    status: Status
    output: str | None = None
    poster: str | None = None
    page: str | None = Field(None, description="the landing page's URL (API renders)")
    # Where the outputs are kept: the API signs fresh URLs from these when it shows the result
    # (a URL signed at render time would have expired).
    output_key: str | None = None
    poster_key: str | None = None
    reason: str | None = None
    code: str | None = Field(None, description="error code: invalid_data, render_failed, …")
    field: str | None = None
    segments: int | None = None
    segments_cached: int | None = None
    seconds: float | None = None
    fallbacks: list[str] | None = Field(
        None,
        description="translation ids the recipient's locale lacks, said in the template's locale",
    )


# ── the API's records: templates, renders, batches (kept by a JobStore) ───────────────────


class JobState(StrEnum):
    """Where a render or a batch is. Transitions only go forward (conditional writes)."""

    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class TemplateRecord(Strict):
    """A registered template version: its bundle (template + scenes + assets) in the BlobStore."""

    id: str
    version: str = Field(description="sha256 (first 16 hex) of the bundle's bytes")
    bundle_key: str
    created_at: float
    variables: list[str]


class Urls(Strict):
    video: str | None = None
    poster: str | None = None
    page: str | None = None


class RenderRecord(Strict):
    """One recipient rendered through the API (POST /renders)."""

    id: str
    template_id: str
    version: str
    data: dict[str, Any]
    state: JobState
    created_at: float
    updated_at: float
    output_key: str
    poster_key: str
    preview: bool = False
    result: RecipientResult | None = None
    page_token: str | None = None
    progress: float = Field(0.0, ge=0, le=1, description="the share of the render done")


class BatchRecord(Strict):
    """A batch (POST /batches or an upload under incoming/): its source and its progress."""

    id: str
    template_id: str
    version: str
    source_key: str = Field(description="the CSV/JSONL object the batch reads")
    items_key: str = Field(description="the normalized item list Plan writes (a JSON array)")
    mapping: FieldMapping | None = None
    preview: bool = False
    folder: bool = Field(
        False, description="`reel batch`: outputs named after recipients, no landing pages"
    )
    state: JobState
    created_at: float
    updated_at: float
    total: int | None = Field(None, description="known once planned")
    error: str | None = None


class BatchItem(Strict):
    """One element of a batch's item list: a source row, or why it could not be read."""

    index: int
    line: int
    fields: dict[str, Any] | None = None
    error: str | None = None
    field: str | None = None


class RecipientData(Strict):
    """A recipient's current record in a campaign: what their next render or stream shows.
    Replaced by `PUT /recipients/{id}/data` and the CRM hooks; `data_hash` keys what changed."""

    campaign_id: str
    recipient_id: str
    data: dict[str, Any]
    data_hash: str
    token: str = Field(description="the recipient's landing page (and stream) token")
    updated_at: float
    consent: bool | None = Field(
        None, description="tracking consent: the record's answer, or the one given on the page"
    )
    consent_source: Literal["record", "page"] | None = None
    consent_at: float | None = None


def new_id(prefix: str) -> str:
    """A new render or batch id (`r_…`, `b_…`)."""
    return f"{prefix}_{uuid.uuid4().hex}"
