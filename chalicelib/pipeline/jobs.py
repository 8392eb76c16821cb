"""The job model: what a render step receives and what it reports, one recipient at a time."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

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


class RecipientResult(Strict):
    """One line of results.jsonl."""

    recipient_id: str
    line: int
    status: Status
    output: str | None = None
    poster: str | None = None
    reason: str | None = None
    code: str | None = Field(None, description="error code: invalid_data, render_failed, …")
    field: str | None = None
    segments: int | None = None
    segments_cached: int | None = None
    seconds: float | None = None
