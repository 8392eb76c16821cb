"""The render worker Lambda: a batch of items (a Map child), or one API render (async invoke)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from chalicelib import bootstrap
from chalicelib.handlers import logger, once, tracer
from chalicelib.handlers.models import (
    BatchOutput,
    HlsGroupEvent,
    HlsStillEvent,
    ItemResult,
    RenderBatchEvent,
    RenderEvent,
    RenderItemEvent,
    RenderOutput,
)
from chalicelib.services import batches, renders

# A retried item (Lambda service error, a lost response) returns the stored result instead of
# rendering again; an item whose render raised leaves no record, so the Retry really retries.
ITEM_IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[batch_id, item.index]", raise_on_no_idempotency_key=True
)
RENDER_IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="render_id", raise_on_no_idempotency_key=True
)

Event = RenderBatchEvent | RenderItemEvent | RenderEvent | HlsGroupEvent | HlsStillEvent
RenderInput = TypeAdapter[Event](Event)


def _render_item(event: RenderItemEvent) -> dict[str, Any]:
    result = batches.render_item(bootstrap.backends(), event.batch_id, event.item)
    return result.model_dump(mode="json", exclude_none=True)


def _render_batch(event: RenderBatchEvent, context: LambdaContext) -> dict[str, Any]:
    """Each item in turn, each at most once (its own idempotency key, as if invoked alone),
    through this function's warm /tmp segment cache. A recipient whose render crashed is
    recorded failed with the reason and the others go on; a render already in progress
    elsewhere (a repeated child) is waited for by the task's Retry."""
    results = []
    for item in event.items:
        logger.append_keys(item_index=item.index)
        one = RenderItemEvent(batch_id=event.batch_id, item=item)
        try:
            result = once("render_item", ITEM_IDEMPOTENCY, _render_item, one, context)
        except IdempotencyAlreadyInProgressError:
            raise
        except Exception as exc:  # an entry point: this recipient alone fails
            reason = f"{type(exc).__name__}: {exc}"
            logger.exception("recipient crashed")
            recorded = batches.record_failure(bootstrap.backends(), event.batch_id, item, reason)
            result = recorded.model_dump(mode="json", exclude_none=True)
        logger.info("recipient rendered", extra={"status": result["status"]})
        results.append(ItemResult(recipient_id=result["recipient_id"], status=result["status"]))
    logger.remove_keys(["item_index"])
    return BatchOutput(results=results).model_dump(mode="json")


def _render(event: RenderEvent) -> dict[str, Any]:
    record = renders.run_render(bootstrap.backends(), event.render_id)
    return RenderOutput(render_id=record.id, state=record.state.value).model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=RenderInput)
def handler(event: Event, context: LambdaContext) -> dict[str, Any]:
    """A Map child's batch `{"batch_id", "items"}` → `{"results": [{recipient_id, status}]}`
    (a bad record is a failed result); one item `{"batch_id", "item"}` → its RecipientResult;
    `{"render_id"}` → the render's final state; `{"action": "hls_group", …}` → one
    stream group rendered into the chunk store (content-addressed: a retry rewrites the same
    bytes); `{"action": "hls_still", …}` → a poster frame from a stored chunk. Unexpected
    errors propagate, so Step Functions' Retry and Catch see them."""
    if isinstance(event, HlsStillEvent):
        from chalicelib.landing.stream import GroupRenderer

        b = bootstrap.backends()
        GroupRenderer(b.cache, b.render).still(event.chunk, event.init, event.frame, event.out)
        return {"out": event.out, "state": "done"}
    if isinstance(event, HlsGroupEvent):
        from chalicelib.landing.stream import render_group_event

        logger.append_keys(campaign_id=event.campaign_id, group=event.key[:16])
        fields = event.model_dump(exclude={"action"})
        lease = bootstrap.settings().stream_lease
        state = render_group_event(bootstrap.backends(), **fields, lease=lease)
        logger.info("stream group", extra={"rendition": event.rendition, "state": state})
        return {"key": event.key, "state": state}
    if isinstance(event, RenderBatchEvent):
        logger.append_keys(batch_id=event.batch_id, items=len(event.items))
        return _render_batch(event, context)
    if isinstance(event, RenderEvent):
        logger.append_keys(render_id=event.render_id)
        out = once("render", RENDER_IDEMPOTENCY, _render, event, context)
        logger.info("render finished", extra={"state": out["state"]})
        return out
    logger.append_keys(batch_id=event.batch_id, item_index=event.item.index)
    result = once("render_item", ITEM_IDEMPOTENCY, _render_item, event, context)
    # No recipient id: it may be an email (the batch and the item say which it was).
    logger.info("recipient rendered", extra={"status": result["status"]})
    return result
