"""The SQS relay Lambda on moto: relay messages become signed webhook deliveries, a transient
failure fails its record alone, and SQS's redelivery (after recovery) delivers it once."""

from __future__ import annotations

import copy
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from chalicelib import bootstrap
from chalicelib.connectors.base import DeliveryStatus
from chalicelib.connectors.relay import Relay
from chalicelib.handlers import relay as relay_handler
from chalicelib.pipeline.jobs import RecipientData
from tests.aws import ACCOUNT, REGION, Env, FakeContext
from tests.conftest import Campaign
from tests.fakes import WEBHOOK_SECRETS, FakeWebhookReceiver

EVENTS = Path(__file__).resolve().parents[1] / "events"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reel-relay"

RULES = """\
rules:
  - id: played
    when: "event.kind == 'play'"
    do:
      - connector: webhook
        action: video.played
        params: {who: "{{ recipient_id }}"}
  - id: clicked
    when: "event.kind == 'cta_click'"
    do:
      - {connector: webhook, action: video.clicked}
"""


class Clock:
    """The relay's clock: real time, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def campaign(campaign: Campaign) -> Campaign:
    """The tiny campaign with a rules.yaml (written before `aws` registers the folder)."""
    (campaign.root / "rules.yaml").write_text(RULES, encoding="utf-8")
    return campaign


@pytest.fixture
def clock(
    aws: Env, fake_webhook: FakeWebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Clock]:
    """The webhook connector pointed at the fake receiver; the relay on a movable clock."""
    monkeypatch.setenv("REEL_WEBHOOK_URL", fake_webhook.endpoint)
    monkeypatch.setenv("REEL_WEBHOOK_SECRETS", ",".join(WEBHOOK_SECRETS))
    bootstrap.reset()
    clock = Clock()
    built = bootstrap.relay

    def relay() -> Relay:
        r = built()
        r.clock = clock
        return r

    monkeypatch.setattr(bootstrap, "relay", relay)
    # The relay sends the behaviour of recipients it holds a record of (their consent known).
    b = bootstrap.backends()
    for rid in ("r-001", "r-002", "Zoë-001", "r-\u2603-002"):
        b.recipients.put_recipient(
            RecipientData(
                campaign_id="tiny", recipient_id=rid, data={}, data_hash="0", token=rid,
                updated_at=0.0,
            )
        )  # fmt: skip
    yield clock
    bootstrap.reset()


def sqs_event() -> dict[str, Any]:
    return json.loads((EVENTS / "relay_sqs.json").read_text())


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    context = FakeContext(function_name="reel-relay", invoked_function_arn=FUNCTION)
    return dict(relay_handler.handler(event, context))  # type: ignore[arg-type]


def failed_ids(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def statuses() -> dict[str, int]:
    found = bootstrap.backends().deliveries.by_status(limit=1000)
    return {s.value: sum(1 for d in found if d.status is s) for s in DeliveryStatus}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the handlers' Powertools Logger writes (one JSON object a line)."""
    stream = io.StringIO()
    handler = relay_handler.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_every_record_is_delivered_once(
    clock: Clock, fake_webhook: FakeWebhookReceiver, log_lines: io.StringIO
) -> None:
    # GIVEN an SQS batch of two plays and a click of the campaign with rules
    event = sqs_event()
    # WHEN the relay Lambda handles it
    result = invoke(event)
    # THEN no record failed, and the receiver got one verified webhook per delivery
    assert result == {"batchItemFailures": []}
    assert sorted(p["type"] for p in fake_webhook.payloads) == [
        "reel.video.clicked",
        "reel.video.played",
        "reel.video.played",
    ]
    assert len(fake_webhook.seen) == 3 and set(fake_webhook.seen.values()) == {1}
    played = {p["data"]["recipient_id"]: p for p in fake_webhook.payloads if "played" in p["type"]}
    assert played["r-002"]["data"]["params"] == {"who": "r-002"}
    assert played["r-002"]["data"]["event"]["id"] == "evt-play-0002"
    assert statuses()["delivered"] == 3
    # AND each attempt was logged with the message id and the campaign, never the recipient
    # (an id may be an email: no personal data in logs)
    logs = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    attempted = [entry for entry in logs if entry.get("message") == "delivery attempted"]
    assert {(a["message_id"], a["campaign_id"]) for a in attempted} == {
        (r["messageId"], "tiny") for r in event["Records"]
    }
    assert not any("recipient_id" in entry for entry in logs)
    # AND the same batch once more (SQS delivers at least once) sends nothing again
    assert invoke(event) == {"batchItemFailures": []}
    assert len(fake_webhook.requests) == 3


def test_a_transient_failure_fails_its_record_alone_and_redelivery_delivers_it_once(
    clock: Clock, fake_webhook: FakeWebhookReceiver
) -> None:
    event = sqs_event()
    first = event["Records"][0]["messageId"]
    # GIVEN a receiver that answers 503 to the first request
    fake_webhook.fail_next(1, status=503)
    # WHEN the batch is handled
    result = invoke(event)
    # THEN exactly that record is reported failed; the others' deliveries went through
    assert failed_ids(result) == [first]
    assert statuses() == {"pending": 1, "delivered": 2, "failed": 0, "disabled": 0}
    (pending,) = bootstrap.backends().deliveries.due(clock() + 3600)
    assert pending.attempts == 1 and "503" in (pending.last_error or "")
    assert len(fake_webhook.seen) == 2
    # WHEN the receiver has recovered and SQS delivers the records again, after their
    # visibility timeout (the relay's clock past the delivery's next_at)
    clock.offset = pending.next_at - time.time() + 1
    result = invoke(event)
    # THEN nothing fails, and the receiver has each delivery exactly once
    assert failed_ids(result) == []
    assert statuses()["delivered"] == 3
    assert len(fake_webhook.seen) == 3 and set(fake_webhook.seen.values()) == {1}
    assert len(fake_webhook.requests) == 4  # three, and the one retry
    delivered = bootstrap.backends().deliveries.get(pending.key)
    assert delivered is not None and delivered.attempts == 2


def test_a_redelivery_before_next_at_fails_again_without_an_attempt(
    clock: Clock, fake_webhook: FakeWebhookReceiver
) -> None:
    event = sqs_event()
    first = event["Records"][0]["messageId"]
    # GIVEN a first attempt answered 429 with Retry-After: 600
    fake_webhook.fail_next(1, status=429, retry_after=600)
    assert failed_ids(invoke(event)) == [first]
    # WHEN SQS delivers the records again before then
    clock.offset = 300
    result = invoke(event)
    # THEN that record fails again, and nothing was sent
    assert failed_ids(result) == [first]
    assert len(fake_webhook.requests) == 3
    # WHEN it comes again after Retry-After
    clock.offset = 601
    assert failed_ids(invoke(event)) == []
    assert len(fake_webhook.seen) == 3 and set(fake_webhook.seen.values()) == {1}


def test_a_dead_lettered_delivery_does_not_fail_its_record(
    clock: Clock, fake_webhook: FakeWebhookReceiver
) -> None:
    # GIVEN a receiver that refuses the first delivery for good (400)
    fake_webhook.fail_next(1, status=400)
    # WHEN the batch is handled
    result = invoke(sqs_event())
    # THEN no record is retried: the failed delivery waits in the store
    assert failed_ids(result) == []
    (dead,) = bootstrap.backends().deliveries.by_status(DeliveryStatus.failed)
    assert dead.attempts == 1 and "400" in (dead.last_error or "")
    assert statuses()["delivered"] == 2


def test_malformed_messages_are_dropped_not_retried(
    clock: Clock, fake_webhook: FakeWebhookReceiver
) -> None:
    event = sqs_event()
    good = event["Records"][0]
    bad = []
    for i, body in enumerate(
        [
            "not json",
            "[1, 2]",
            json.dumps({"type": "gossip"}),
            json.dumps({"type": "event", "event": {"id": "x"}}),  # not an Event
            json.dumps({"type": "event"}),
        ]
    ):
        record = copy.deepcopy(good)
        record["messageId"] = f"bad-{i}"
        record["body"] = body
        bad.append(record)
    result = invoke({"Records": [*bad, good]})
    assert failed_ids(result) == []
    assert [p["type"] for p in fake_webhook.payloads] == ["reel.video.played"]


def test_a_batch_whose_every_record_fails_is_retried_whole(
    clock: Clock, fake_webhook: FakeWebhookReceiver
) -> None:
    # Powertools raises when no record succeeded: Lambda retries the whole batch.
    event = {"Records": sqs_event()["Records"][:1]}
    fake_webhook.fail_next(1, status=503)
    with pytest.raises(BatchProcessingError):
        invoke(event)
    clock.offset = 3600
    assert invoke(event) == {"batchItemFailures": []}
    assert len(fake_webhook.seen) == 1


def test_messages_round_trip_through_sqs(
    aws: Env, clock: Clock, fake_webhook: FakeWebhookReceiver
) -> None:
    # GIVEN relay messages put on the relay queue the way ingest does (SqsQueue)
    events = [
        {
            "id": f"evt-sqs-{i:04d}",
            "kind": "play",
            "ts": 1714564799000.0 + i,
            "position": 0.0,
            "campaign_id": "tiny",
            "recipient_id": rid,
            "received_at": 1714564800.5 + i,
        }
        for i, rid in enumerate(["Zoë-001", "r-\u2603-002"])
    ]
    bootstrap.backends().queue.put([{"type": "event", "event": e} for e in events])
    # WHEN Lambda's event source receives them and invokes the relay with them
    sqs = aws.sqs
    arn = sqs.get_queue_attributes(QueueUrl=aws.relay_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    received = sqs.receive_message(
        QueueUrl=aws.relay_queue_url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )["Messages"]
    assert len(received) == 2
    lambda_event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            }
            for m in received
        ]
    }
    result = invoke(lambda_event)
    # THEN every record succeeded (the event source deletes them), and each event arrived
    # at the receiver as it was put on the queue
    assert result == {"batchItemFailures": []}
    for m in received:
        sqs.delete_message(QueueUrl=aws.relay_queue_url, ReceiptHandle=m["ReceiptHandle"])
    got = sorted((p["data"]["event"] for p in fake_webhook.payloads), key=lambda e: e["id"])
    assert [{k: e[k] for k in events[0]} for e in got] == events
    assert sorted(p["data"]["recipient_id"] for p in fake_webhook.payloads) == sorted(
        e["recipient_id"] for e in events
    )
    left = sqs.receive_message(QueueUrl=aws.relay_queue_url, MaxNumberOfMessages=10)
    assert left.get("Messages", []) == []
