"""The batch Lambdas Step Functions calls around the Map: plan, finalize, record_failure."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from chalicelib import bootstrap
from chalicelib.handlers import logger, tracer
from chalicelib.handlers.models import (
    BatchEvent,
    BatchOutput,
    FailureEvent,
    FinalizeOutput,
    ItemResult,
    PlanOutput,
    TaskError,
)
from chalicelib.services import batches

# plan_batch, finalize_batch, record_failure and fail_batch are idempotent by themselves
# (conditional state changes, first result wins): these handlers need no idempotency record.


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=BatchEvent)
def plan(event: BatchEvent, context: LambdaContext) -> dict[str, Any]:
    """Write the batch's item list (a JSON array in S3) and say where the Map reads it."""
    logger.append_keys(batch_id=event.batch_id)
    b = bootstrap.backends()
    batch = batches.plan_batch(b, event.batch_id)
    total = batch.total or 0
    logger.info("batch planned", extra={"total": total})
    bucket, key = b.blobs.location(batch.items_key)  # the Map's ItemReader reads it itself
    return PlanOutput(batch_id=batch.id, bucket=bucket, items_key=key, total=total).model_dump(
        mode="json"
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=BatchEvent)
def finalize(event: BatchEvent, context: LambdaContext) -> dict[str, Any]:
    """Close the batch; returns its counts by status."""
    logger.append_keys(batch_id=event.batch_id)
    counts = batches.finalize_batch(bootstrap.backends(), event.batch_id)
    logger.info("batch finalized", extra={"counts": counts})
    return FinalizeOutput(batch_id=event.batch_id, counts=counts).model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=FailureEvent)
def record_failure(event: FailureEvent, context: LambdaContext) -> dict[str, Any]:
    """A Catch's target: with `items` (or an `item`), those recipients are recorded failed and
    the batch goes on; without, the batch itself could not run and is marked failed."""
    logger.append_keys(batch_id=event.batch_id)
    reason = task_error_reason(event.error)
    b = bootstrap.backends()
    if event.items is not None:
        # A child's invocation died: its items that have no result yet are recorded failed
        # (a result already recorded stays: the first one wins).
        results = []
        for item in event.items:
            result = batches.record_failure(b, event.batch_id, item, reason)
            results.append(ItemResult(recipient_id=result.recipient_id, status=result.status))
        logger.warning("batch of recipients failed", extra={"reason": reason})
        return BatchOutput(results=results).model_dump(mode="json")
    if event.item is None:
        logger.error("batch failed", extra={"reason": reason})
        batches.fail_batch(b, event.batch_id, reason)
        return {"batch_id": event.batch_id, "state": "failed"}
    logger.append_keys(item_index=event.item.index)
    result = batches.record_failure(b, event.batch_id, event.item, reason)
    logger.warning("recipient failed", extra={"reason": reason})
    return result.model_dump(mode="json", exclude_none=True)


def task_error_reason(error: TaskError) -> str:
    """A readable reason from a Catch's Error and Cause (a Lambda error's Cause is JSON)."""
    message = error.Cause.strip()
    try:
        cause = json.loads(message)
    except ValueError:
        cause = None
    if isinstance(cause, dict) and cause.get("errorMessage"):
        message = str(cause["errorMessage"])
    return f"{error.Error}: {message}" if message else error.Error
