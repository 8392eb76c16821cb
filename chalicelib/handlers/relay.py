"""The relay Lambda: SQS batches of relay messages → deliveries to the CRM connectors.

Each record is one relay message (`{"type": "event", "event": …}` or a completion notice). It
is planned into deliveries by the campaign's rules (`Relay.accept`: stored once, whatever the
number of receives), and every one of them that is pending and due is attempted at once.

Retries are SQS's: if a delivery of the record is still `pending` afterwards (a transient
failure: 5xx, 429, a timeout), the record alone is reported failed (`batchItemFailures`; the
event source must have ReportBatchItemFailures), and SQS delivers it again once its visibility
timeout has passed — that is the backoff on AWS. On that receive the deliveries are planned
again (same keys: nothing is stored twice, nothing delivered is sent again) and those that are
due are attempted. The relay's `next_at` still gates each attempt: if a receive comes before a
delivery's `next_at` (a Retry-After longer than the visibility timeout), it is not attempted and
the record fails again, to be received later. Simple, and bounded: after the queue's
maxReceiveCount receives the message goes to the dead-letter queue (redrive it to resume);
`REEL_RELAY_MAX_ATTEMPTS` at most that count makes the last attempt dead-letter the delivery in
the store instead, where `reel deliveries` / `GET /deliveries` show it.

Not retried: a message that cannot be parsed or planned (bad JSON, an unknown type, an invalid
event) is logged and dropped, since no receive can change it; a delivery that ends `failed`
(dead-lettered: a permanent error, or out of attempts) or `disabled` (410 Gone) does not fail
the record: it is visible in the store, and redelivered from there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from chalicelib import bootstrap
from chalicelib.connectors.base import Delivery, DeliveryStatus
from chalicelib.connectors.relay import Relay
from chalicelib.handlers import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)

_RECORD_KEYS = ("message_id", "campaign_id", "recipient_id")


class DeliveriesPending(Exception):
    """Some deliveries of a record are to be retried: fail the record, SQS receives it again."""


def _whose(message: Mapping[str, Any]) -> dict[str, Any]:
    """The campaign a message is about (for the log), as far as it says."""
    about = message.get("event") if message.get("type") == "event" else message
    if not isinstance(about, Mapping):
        return {}
    # Not the recipient id: it may be an email (no personal data in logs).
    return {k: about[k] for k in ("campaign_id",) if about.get(k) is not None}


def relay_message(relay: Relay, message_id: str, body: str) -> list[Delivery]:
    """Plan one message and attempt its due deliveries; their states after the attempts.

    Raises DeliveriesPending if any is still pending; a message that cannot be parsed or
    planned is logged and dropped (no deliveries)."""
    logger.append_keys(message_id=message_id)
    try:
        message = json.loads(body)
        if not isinstance(message, dict):
            raise ValueError(f"a relay message is a JSON object, not {type(message).__name__}")
        logger.append_keys(**_whose(message))
        keys = relay.accept([message])
    except (ValueError, KeyError) as exc:  # malformed: no receive can fix it
        # The exception's type only: its message may quote the message's values.
        logger.error("relay message dropped", extra={"reason": type(exc).__name__})
        return []
    done: list[Delivery] = []
    for key in dict.fromkeys(keys):  # a key once, in plan order
        delivery = relay.b.deliveries.get(key)
        if delivery is None:
            continue
        if delivery.status is DeliveryStatus.pending and delivery.next_at <= relay.clock():
            delivery = relay.attempt(delivery)
            logger.info(
                "delivery attempted",
                extra={
                    "delivery": key,
                    "connector": delivery.out.connector,
                    "status": str(delivery.status),
                    "attempts": delivery.attempts,
                    # Not the error's text: a CRM's answer may quote what it was sent.
                    "failed": delivery.last_error is not None,
                },
            )
        done.append(delivery)
    pending = [d.key for d in done if d.status is DeliveryStatus.pending]
    if pending:
        raise DeliveriesPending(f"{len(pending)} deliveries to retry: {', '.join(pending)}")
    logger.info("relay message done", extra={"deliveries": len(done)})
    return done


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """An SQS batch → `{"batchItemFailures": [{"itemIdentifier": <messageId>}, …]}`, listing
    the records whose deliveries are still pending (SQS receives those again)."""
    relay = bootstrap.relay()

    def record_handler(record: SQSRecord) -> None:
        try:
            relay_message(relay, record.message_id, record.body)
        finally:
            logger.remove_keys(list(_RECORD_KEYS))

    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
