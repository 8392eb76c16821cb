"""The Lambda handlers' inputs and outputs: the payloads the batch state machine passes."""

from __future__ import annotations

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


class RenderEvent(Strict):
    """A single render (the asynchronous invoke of `StepFunctionsOrchestrator.start_render`)."""

    render_id: str = Field(min_length=1)


class TaskError(Strict):
    """What a Catch adds to a state's input: the error name and its cause (often JSON)."""

    Error: str
    Cause: str = ""


class FailureEvent(Strict):
    """RecordFailure (an `item` whose render failed) or FailBatch (no item: the whole batch)."""

    batch_id: str = Field(min_length=1)
    item: BatchItem | None = None
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
