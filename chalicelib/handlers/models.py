"""The Lambda handlers' inputs and outputs: the payloads the batch state machine passes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.pipeline.jobs import BatchItem
from chalicelib.template.model import Strict


class BatchEvent(Strict):
    """Plan and Finalize: the execution input."""

    batch_id: str = Field(min_length=1)


class RenderItemEvent(Strict):
    """RenderRecipient: one element of the Map, as its ItemSelector builds it."""

    batch_id: str = Field(min_length=1)
    item: BatchItem


class RenderBatchEvent(Strict):
    """RenderRecipient: a batch of the Map's items (its ItemBatcher's), rendered in turn."""

    batch_id: str = Field(min_length=1)
    items: list[BatchItem] = Field(min_length=1)


class ItemResult(Strict):
    """What a child returns per recipient (the Map's ResultWriter keeps it): short fields only."""

    recipient_id: str
    status: str


class BatchOutput(Strict):
    results: list[ItemResult]


class RenderEvent(Strict):
    """A single render (the asynchronous invoke of `StepFunctionsOrchestrator.start_render`)."""

    render_id: str = Field(min_length=1)


class HlsGroupEvent(Strict):
    """One stream group to render just in time (an asynchronous invoke by the API's
    `LambdaRenders`): a run in one rendition, or (`rendition` null) the audio track."""

    action: Literal["hls_group"]
    campaign_id: str
    version: str
    data: dict[str, Any]
    rendition: str | None
    index: int = Field(ge=0)
    key: str = Field(pattern=r"^[0-9a-f]{64}$")


class HlsStillEvent(Strict):
    """A frame of a stored stream chunk as a JPEG (a page's poster, made from the stream)."""

    action: Literal["hls_still"]
    chunk: str = Field(pattern=r"^hls/[ps]/[0-9a-f]{2}/[0-9a-f]{64}\.m4s$")
    init: str = Field(pattern=r"^hls/s/[0-9a-f]{2}/[0-9a-f]{64}\.mp4$")
    frame: int = Field(ge=0, le=10_000)
    out: str = Field(pattern=r"^posters/stream-[0-9a-f]{32}-[0-9]{1,9}\.jpg$")


class TaskError(Strict):
    """What a Catch adds to a state's input: the error name and its cause (often JSON)."""

    Error: str
    Cause: str = ""


class FailureEvent(Strict):
    """RecordFailure (the `items` of a child whose invocation failed; `item`: one) or FailBatch
    (neither: the whole batch)."""

    batch_id: str = Field(min_length=1)
    item: BatchItem | None = None
    items: list[BatchItem] | None = Field(None, description="a batch whose invocation failed")
    error: TaskError


class PlanOutput(Strict):
    """Plan's result: where the Map reads the item list (never the items themselves)."""

    batch_id: str
    bucket: str
    items_key: str
    total: int


class FinalizeOutput(Strict):
    batch_id: str
    counts: dict[str, int]


class RenderOutput(Strict):
    """A single render's result (the invoke is asynchronous: nobody waits for it)."""

    render_id: str
    state: str
